// The prebuilt packages as a user gets them: the tarballs of `npm run pack:prebuilt` (dist-packages/,
// made by .ci/run) installed into an empty project with no compiler on the PATH, then a scan there.
// The loader must take the CUDA platform package when present (it runs on the CPU without a GPU,
// through device auto), the CPU package without it, and fail with its list of fixes with neither.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { missing, repoRoot } from './helpers/shared.js';

const packages = path.join(repoRoot, 'dist-packages');
const tarballs = existsSync(packages) ? readdirSync(packages).filter((f) => f.endsWith('.tgz')) : [];
const ready = tarballs.some((f) => f.startsWith('fqa-native-linux-x64-0')) && tarballs.some((f) => f.startsWith('fqa-cli-'));

describe.skipIf(missing(ready, `the prebuilt tarballs in ${packages} (npm run pack:prebuilt; .ci/run makes them)`))('prebuilt packages install and scan without a compiler', () => {
  const project = mkdtempSync(path.join(tmpdir(), 'fqa-install-'));
  // PATH with node and sh alone (npm runs install scripts through sh): no cc, gcc, g++, make, cmake
  // or nvcc can be found, so anything that tried to compile would fail.
  const bin = path.join(project, '.bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync('/bin/sh', path.join(bin, 'sh'));
  const env = { ...process.env, PATH: bin, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  delete env.CUDACXX;
  const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  const fqa = (...args: string[]) => spawnSync(process.execPath, [path.join(project, 'node_modules', '@fqa', 'cli', 'bin', 'fqa-scan.js'), ...args], { cwd: project, env, encoding: 'utf8' });

  test('npm install of the tarballs, offline from the npm cache where it can', () => {
    for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make', 'cmake', 'nvcc']) {
      expect(spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status, tool).not.toBe(0);
    }
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'fqa-install-test', private: true, type: 'module', allowScripts: { sharp: true, 'onnxruntime-node': false } }, null, 2));
    execFileSync(process.execPath, [npmCli, 'install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs.map((t) => path.join(packages, t))], { cwd: project, env, stdio: 'pipe' });
    expect(existsSync(path.join(project, 'node_modules', '@fqa', 'native', 'build'))).toBe(false);
  }, 240_000);

  test('fqa-scan info loads the prebuilt binary and a scan runs', async () => {
    const info = fqa('info', '--json');
    expect(info.status, info.stderr).toBe(0);
    const parsed = JSON.parse(info.stdout) as { binary: string; gpu: { compiled: boolean } };
    const cuda = tarballs.some((f) => f.startsWith('fqa-native-linux-x64-cuda-'));
    expect(parsed.binary).toContain(path.join('node_modules', '@fqa', cuda ? 'native-linux-x64-cuda' : 'native-linux-x64', 'fqa-v'));
    expect(parsed.gpu.compiled).toBe(cuda);
    // The scanning install has no libtorch engine: info says why, and deep training takes tfjs.
    expect((parsed as unknown as { trainingEngines: unknown[] }).trainingEngines).toEqual([
      { name: 'torch', available: false, reason: expect.stringMatching(/the @fqa\/torch package is not installed/) },
      { name: 'tfjs', available: true, detail: expect.stringMatching(/^@tensorflow\/tfjs/) },
    ]);
    // A 1024 px tissue-like image with a blurred half: scanned with the shipped model.
    const noise = Buffer.alloc(1024 * 512 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    const sharpHalf = await sharp(noise, { raw: { width: 1024, height: 512, channels: 3 } }).png().toBuffer();
    const blurredHalf = await sharp(noise, { raw: { width: 1024, height: 512, channels: 3 } }).blur(4).png().toBuffer();
    await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#ffffff' } })
      .composite([{ input: sharpHalf, top: 0, left: 0 }, { input: blurredHalf, top: 512, left: 0 }])
      .png().toFile(path.join(project, 'image.png'));
    const score = fqa('score', 'image.png', '--json', '--stride', '235');
    const [r] = JSON.parse(score.stdout) as { rows: number; cols: number; scores: number[]; verdict: string }[];
    expect(score.status, score.stderr).toBe(r!.verdict === 'out-of-focus' ? 1 : 0);
    const top = r!.scores.slice(0, r!.cols);
    const bottom = r!.scores.slice((r!.rows - 1) * r!.cols);
    expect(Math.min(...bottom)).toBeGreaterThan(Math.max(...top));
    const scan = fqa('image.png', '--out', 'report', '--mpp', '0.5', '--json');
    expect([0, 1]).toContain(scan.status);
    expect(existsSync(path.join(project, 'report', 'image.json'))).toBe(true);
  }, 120_000);

  test('without the CUDA package the CPU package loads; without either the error lists the fixes', () => {
    rmSync(path.join(project, 'node_modules', '@fqa', 'native-linux-x64-cuda'), { recursive: true, force: true });
    const cpu = fqa('info', '--json');
    expect(cpu.status, cpu.stderr).toBe(0);
    expect(JSON.parse(cpu.stdout).binary).toContain(path.join('@fqa', 'native-linux-x64', 'fqa-v'));
    rmSync(path.join(project, 'node_modules', '@fqa', 'native-linux-x64'), { recursive: true, force: true });
    const none = fqa('info');
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/no native binary fqa-v[\d.]+\.node/);
    expect(none.stderr).toMatch(/npm install @fqa\/native-linux-x64/);
  });
});
