// Runs the standalone C++ test (no Node): every optimized kernel against the scalar reference.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { buildInfo, gpuInfo } from '../dist/index.js';
import { missing } from '../../../test/helpers/shared.js';

const binary = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'build', 'fqa_core_test');

// Runs the binary without blocking the test worker (a blocked worker misses vitest's RPC deadlines).
function runAsync(file: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, { env });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// Which instruction sets this CPU has, read from the kernel rather than from the code under test.
const cpuFlags = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
const cpuHas = (flag: string) => new RegExp(`\\b${flag}\\b`).test(cpuFlags);

// Four times: as the CPU allows (AVX-512 VNNI integer conv on rows split by channel with VBMI byte
// shuffles, AVX2 byte transposes), with FQA_DISABLE_VNNI=1 (the float conv on VBMI-split rows),
// with FQA_DISABLE_VBMI=1 (AVX-512 takes the byte transposes and float conv of a CPU without VBMI),
// and with FQA_DISABLE_BYTE_SHUFFLES=1 (the scalar split everywhere).
test.each([
  { split: 'fastest', env: {} },
  { split: 'no VNNI', env: { FQA_DISABLE_VNNI: '1' } },
  { split: 'no VBMI', env: { FQA_DISABLE_VBMI: '1' } },
  { split: 'scalar', env: { FQA_DISABLE_BYTE_SHUFFLES: '1' } },
])('C++ core: optimized kernels match the scalar reference (row split: $split)', async ({ split, env }) => {
  expect(existsSync(binary), `${binary} is built by npm run build`).toBe(true);
  const run = await runAsync(binary, { ...process.env, ...env });
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  expect(run.stdout).not.toMatch(/^FAIL/m);
  expect(summary, run.stdout + run.stderr).not.toBeNull();
  expect(Number(summary![2])).toBe(0);
  expect(Number(summary![1])).toBeGreaterThan(100);
  expect(run.status).toBe(0);
  const avx512 = !cpuHas('avx512f') ? 'not supported'
    : split === 'scalar' ? 'scalar'
    : (split === 'fastest' || split === 'no VNNI') && cpuHas('avx512vbmi') && cpuHas('avx512bw') ? 'byte shuffles' : 'byte transposes';
  const conv = !cpuHas('avx512f') ? 'not supported'
    : split === 'fastest' && cpuHas('avx512_vnni') && cpuHas('avx512vbmi') && cpuHas('avx512bw') ? 'integer (VNNI)' : 'float (FMA)';
  const avx2 = !(cpuHas('avx2') && cpuHas('fma')) ? 'not supported' : split === 'scalar' ? 'scalar' : 'byte transposes';
  expect(run.stdout).toContain(`row split: avx512 ${avx512}, avx2 ${avx2}`);
  expect(run.stdout).toContain(`conv: avx512 ${conv}`);
});

// The CUDA build also builds the kernels' element functions as host code (test/cuda_host_test.cu).
const cudaHostTest = path.resolve(path.dirname(binary), 'fqa_cuda_host_test');
const noCudaBuild = missing(gpuInfo().compiled, 'a CUDA build of the addon (nvcc at build time)', 'cuda');

test.skipIf(noCudaBuild)('CUDA kernels\' arithmetic, run on the CPU, matches the scalar reference', async () => {
  expect(existsSync(cudaHostTest), `${cudaHostTest} is built by npm run build in a CUDA build`).toBe(true);
  const run = await runAsync(cudaHostTest, process.env);
  expect(run.stdout).not.toMatch(/^FAIL/m);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  expect(summary, run.stdout + run.stderr).not.toBeNull();
  expect(Number(summary![1])).toBeGreaterThanOrEqual(20);
  expect(run.status).toBe(0);
});

test.skipIf(noCudaBuild)('the CUDA host test fails on an off-by-one in the interior test (mutation build)', async () => {
  const mutant = path.resolve(path.dirname(binary), 'fqa_cuda_host_test_mutant');
  expect(existsSync(mutant), `${mutant} is built by npm run build in a CUDA build`).toBe(true);
  const run = await runAsync(mutant, process.env);
  expect(run.status, run.stdout).toBe(1);
  expect(run.stdout).toMatch(/^FAIL .*shared map/m);
});

// FQA_WERROR goes through npm, turbo (which passes only the variables turbo.json names) and
// cmake-js: the binary under test says whether it really was built with -Werror.
test.skipIf(missing(process.env.FQA_WERROR !== undefined, 'FQA_WERROR in the environment (.ci/run sets it)'))('the tested binary was built with -Werror exactly when FQA_WERROR=ON', () => {
  expect(buildInfo().werror).toBe(process.env.FQA_WERROR === 'ON');
});

// The direct reader's tile cache under 8 concurrent readers, a 3-tile cache and damaged tiles
// (test/tile_cache_stress.cpp; npm run test:tsan runs the same binary under ThreadSanitizer). Built
// only with libtiff and libjpeg, like the reader itself.
const tileCacheStress = path.resolve(path.dirname(binary), 'fqa_tile_cache_stress');
test.skipIf(missing(existsSync(tileCacheStress), `${tileCacheStress} (built with the direct JPEG-tile reader: libtiff-dev, libjpeg62-turbo-dev)`))(
  'C++ tile cache: concurrent readers of failing and evicted tiles get their pixels or the tile\'s own error', async () => {
    const run = await runAsync(tileCacheStress, process.env);
    expect(run.stdout, run.stderr).toContain('tile cache stress: ok');
    expect(run.stdout).not.toMatch(/^FAIL/m);
    expect(run.stdout).toMatch(/12000 reads on 8 threads, [1-9]\d* decode errors/);
    expect(run.status).toBe(0);
  });
