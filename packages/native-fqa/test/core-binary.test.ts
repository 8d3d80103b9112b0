// Runs the standalone C++ test (no Node): every optimized kernel against the scalar reference.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { buildInfo, gpuInfo } from '../dist/index.js';
import { missing } from '../../../test/helpers/shared.js';

const binary = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'build', 'fqa_core_test');

test('C++ core: optimized kernels match the scalar reference', () => {
  expect(existsSync(binary), `${binary} is built by npm run build`).toBe(true);
  const run = spawnSync(binary, { encoding: 'utf8' });
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  expect(run.stdout).not.toMatch(/^FAIL/m);
  expect(summary, run.stdout + run.stderr).not.toBeNull();
  expect(Number(summary![2])).toBe(0);
  expect(Number(summary![1])).toBeGreaterThan(100);
  expect(run.status).toBe(0);
});

// The CUDA build also builds the kernels' element functions as host code (test/cuda_host_test.cu).
const cudaHostTest = path.resolve(path.dirname(binary), 'fqa_cuda_host_test');
const noCudaBuild = missing(gpuInfo().compiled, 'a CUDA build of the addon (nvcc at build time)', 'cuda');

test.skipIf(noCudaBuild)('CUDA kernels\' arithmetic, run on the CPU, matches the scalar reference', () => {
  expect(existsSync(cudaHostTest), `${cudaHostTest} is built by npm run build in a CUDA build`).toBe(true);
  const run = spawnSync(cudaHostTest, { encoding: 'utf8' });
  expect(run.stdout).not.toMatch(/^FAIL/m);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  expect(summary, run.stdout + run.stderr).not.toBeNull();
  expect(Number(summary![1])).toBeGreaterThanOrEqual(20);
  expect(run.status).toBe(0);
});

test.skipIf(noCudaBuild)('the CUDA host test fails on an off-by-one in the interior test (mutation build)', () => {
  const mutant = path.resolve(path.dirname(binary), 'fqa_cuda_host_test_mutant');
  expect(existsSync(mutant), `${mutant} is built by npm run build in a CUDA build`).toBe(true);
  const run = spawnSync(mutant, { encoding: 'utf8' });
  expect(run.status, run.stdout).toBe(1);
  expect(run.stdout).toMatch(/^FAIL .*shared map/m);
});

// FQA_WERROR goes through npm, turbo (which passes only the variables turbo.json names) and
// cmake-js: the binary under test says whether it really was built with -Werror.
test.skipIf(missing(process.env.FQA_WERROR !== undefined, 'FQA_WERROR in the environment (.ci/run sets it)'))('the tested binary was built with -Werror exactly when FQA_WERROR=ON', () => {
  expect(buildInfo().werror).toBe(process.env.FQA_WERROR === 'ON');
});
