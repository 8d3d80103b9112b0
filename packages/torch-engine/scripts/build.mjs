// Builds the torch engine's addon when a libtorch with a CMake package is found, and otherwise
// says so in one line and succeeds: scanning never needs libtorch, and deep training then runs on
// tfjs. FQA_REQUIRE_TORCH=1 (CI's --train install) turns a missing libtorch into a failure.
// Where libtorch is looked for, in order: FQA_TORCH_DIR (a folder holding TorchConfig.cmake),
// Debian's libtorch-dev, the PyTorch that python3 imports (GPU machines ship a CUDA libtorch there).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = (dir) => (dir && existsSync(path.join(dir, 'TorchConfig.cmake')) ? dir : null);

function pythonTorchDir() {
  try {
    const prefix = execFileSync('python3', ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 }).trim();
    return config(path.join(prefix, 'Torch'));
  } catch {
    return null;
  }
}

const torchDir = config(process.env.FQA_TORCH_DIR) ?? config('/usr/share/cmake/Torch') ?? config('/usr/lib/x86_64-linux-gnu/cmake/Torch') ?? pythonTorchDir();
if (!torchDir) {
  const line = '@fqa/torch: no libtorch found (bash scripts/install.sh --train installs Debian\'s libtorch-dev); deep networks train on tfjs';
  if (process.env.FQA_REQUIRE_TORCH === '1') {
    console.error(`${line}, but FQA_REQUIRE_TORCH=1`);
    process.exit(1);
  }
  console.log(line);
  process.exit(0);
}

const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
// A libtorch that is found but does not build (a CUDA PyTorch without the CUDA toolkit, say) leaves
// fqa installable: the engine is optional, so only FQA_REQUIRE_TORCH=1 makes it an install failure.
const run = (args) => {
  const r = spawnSync(process.execPath, [cmakeJs, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    const line = `@fqa/torch: cmake-js ${args[0]} against ${torchDir} failed${r.error ? ` (${r.error.message})` : ''}; deep networks train on tfjs`;
    if (process.env.FQA_REQUIRE_TORCH === '1') {
      console.error(`${line}, but FQA_REQUIRE_TORCH=1`);
      process.exit(r.status || 1);
    }
    console.warn(line);
    process.exit(0);
  }
};
console.log(`@fqa/torch: building against ${torchDir} (one libtorch translation unit: about 2 minutes)`);
run(['configure', '--out', 'build', `--CDTorch_DIR=${torchDir}`, `--CDFQA_WERROR=${process.env.FQA_WERROR ?? 'OFF'}`]);
run(['build', '--out', 'build']);
