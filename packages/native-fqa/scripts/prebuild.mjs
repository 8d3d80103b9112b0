#!/usr/bin/env node
/**
 * Prebuilt binaries the way sharp ships them: one npm package per platform and variant holding only
 * the versioned addon (fqa-v<version>.node), listed as optionalDependencies of @fqa/native, so users
 * install without a compiler. Produces, in <repo>/dist-packages/:
 *   fqa-native-<platform>-<arch>-<version>.tgz        CPU build (FQA_CUDA=OFF)
 *   fqa-native-<platform>-<arch>-cuda-<version>.tgz   CUDA build (static cudart; when nvcc is found,
 *                                                      required with --require-cuda)
 *   fqa-native-<version>.tgz, fqa-core-<version>.tgz, fqa-queue-<version>.tgz, fqa-cli-<version>.tgz
 * Both native variants are built with warnings as errors in host code.
 *
 *   npm run pack:prebuilt            (from the repository root; after npm run build)
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(nativeRoot, '..', '..');
const out = path.join(repoRoot, 'dist-packages');
const staging = path.join(nativeRoot, 'build-prebuild');
const requireCuda = process.argv.includes('--require-cuda');
const manifest = JSON.parse(readFileSync(path.join(nativeRoot, 'package.json'), 'utf8'));
const version = manifest.version;
const binary = `fqa-v${version}.node`;
const platformName = `@fqa/native-${process.platform}-${process.arch}`;

function run(cmd, args, cwd) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
}

function pack(dir) {
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop();
  console.log(`packed ${path.join(out, name)}`);
}

function hasNvcc() {
  for (const candidate of [process.env.CUDACXX, '/usr/local/cuda/bin/nvcc']) if (candidate && existsSync(candidate)) return true;
  try {
    execFileSync('nvcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const cmakeJs = path.join(repoRoot, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const variants = [{ suffix: '', cuda: 'OFF', description: 'CPU' }];
if (hasNvcc()) variants.push({ suffix: '-cuda', cuda: 'ON', description: 'CPU + CUDA (static cudart; needs an NVIDIA driver to use the GPU, loads without one)' });
else if (requireCuda) throw new Error('--require-cuda: nvcc was not found (install the CUDA toolkit or set CUDACXX)');
else console.log('nvcc not found: only the CPU package is built');

for (const v of variants) {
  const buildDir = path.join(staging, `build${v.suffix || '-cpu'}`);
  run(process.execPath, [cmakeJs, 'compile', '--out', buildDir, `--CDFQA_CUDA=${v.cuda}`, '--CDFQA_WERROR=ON'], nativeRoot);
  const pkgDir = path.join(staging, `package${v.suffix || '-cpu'}`);
  rmSync(pkgDir, { recursive: true, force: true });
  mkdirSync(pkgDir, { recursive: true });
  copyFileSync(path.join(buildDir, 'Release', binary), path.join(pkgDir, binary));
  const name = `${platformName}${v.suffix}`;
  writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({
    name, version, description: `fqa's native addon prebuilt for ${process.platform}-${process.arch}: ${v.description}`,
    os: [process.platform], cpu: [process.arch], main: binary, files: [binary], license: manifest.license ?? 'UNLICENSED',
  }, null, 2) + '\n');
  writeFileSync(path.join(pkgDir, 'README.md'), `# ${name}\n\nThe prebuilt ${binary} of @fqa/native (${v.description}). Installed as an optional dependency of @fqa/native; not used directly.\n`);
  pack(pkgDir);
}

// @fqa/native as published: the compiled TypeScript and the optional platform packages; no build
// scripts, so installing it never compiles anything.
const nativeStage = path.join(staging, 'package-native');
rmSync(nativeStage, { recursive: true, force: true });
mkdirSync(nativeStage, { recursive: true });
execFileSync('cp', ['-r', path.join(nativeRoot, 'dist'), nativeStage]);
const { scripts: _scripts, devDependencies: _dev, dependencies: _deps, ...published } = manifest;
writeFileSync(path.join(nativeStage, 'package.json'), JSON.stringify({
  ...published, files: ['dist'],
  optionalDependencies: Object.fromEntries(variants.map((v) => [`${platformName}${v.suffix}`, version])),
}, null, 2) + '\n');
pack(nativeStage);
for (const dir of ['core', 'queue', 'cli']) pack(path.join(repoRoot, 'packages', dir));
