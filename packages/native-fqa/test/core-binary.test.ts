// Runs the standalone C++ test (no Node): every optimized kernel against the scalar reference.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { gpuInfo } from '../dist/index.js';

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
const cudaBuild = gpuInfo().compiled;
if (!cudaBuild) console.warn('[fqa tests] skipping the CUDA host test: this build has no CUDA (nvcc not found at build time)');

test.skipIf(!cudaBuild)('CUDA kernels\' arithmetic, run on the CPU, matches the scalar reference', () => {
  expect(existsSync(cudaHostTest), `${cudaHostTest} is built by npm run build in a CUDA build`).toBe(true);
  const run = spawnSync(cudaHostTest, { encoding: 'utf8' });
  expect(run.stdout).not.toMatch(/^FAIL/m);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  expect(summary, run.stdout + run.stderr).not.toBeNull();
  expect(Number(summary![1])).toBeGreaterThanOrEqual(20);
  expect(run.status).toBe(0);
});
