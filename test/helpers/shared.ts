/**
 * Where the read-only shared material lives (../shared beside the repository), and the rule for
 * skips: a test whose prerequisite is missing skips with a printed reason on a developer machine,
 * but CI sets FQA_REQUIRE_ALL=1 (.ci/run) and then every such skip is a failure instead, so a
 * missing ../shared, dist-packages/ or tool can never make CI green by running nothing.
 * FQA_REQUIRE_CUDA=1 (set by .ci/run when nvcc is there) does the same for CUDA-build tests. Only
 * a missing GPU may skip under both (CI has none): GPU-only assertions use skipIf(!hasGpu).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedRoot = process.env.FQA_SHARED ?? path.resolve(repoRoot, '..', 'shared');
export const requireAll = process.env.FQA_REQUIRE_ALL === '1';
export const requireCuda = process.env.FQA_REQUIRE_CUDA === '1';

/**
 * For describe.skipIf / test.skipIf: true (skip) when `available` is false, with the reason
 * printed; under FQA_REQUIRE_ALL (or FQA_REQUIRE_CUDA for kind 'cuda') it throws instead, which
 * fails the test file.
 */
export function missing(available: boolean, what: string, kind: 'all' | 'cuda' = 'all'): boolean {
  if (available) return false;
  const required = kind === 'cuda' ? requireCuda : requireAll;
  if (required) throw new Error(`${kind === 'cuda' ? 'FQA_REQUIRE_CUDA' : 'FQA_REQUIRE_ALL'}=1 but ${what} is missing: the tests that need it would be skipped`);
  console.warn(`[fqa tests] skipping tests that need ${what}: not found`);
  return true;
}

export const hasShared = !missing(existsSync(path.join(sharedRoot, 'reference', 'focuslitenn', 'golden-scores.json')), `${sharedRoot} (reference weights and data)`);

export function shared(...parts: string[]): string {
  return path.join(sharedRoot, ...parts);
}

export const tcgaImages = {
  'tcga-in-focus': 'TCGA@Focus_patch_i_32381_j_37784.png',
  'tcga-out-of-focus': 'TCGA@Focus_patch_i_9651_j_81514.png',
} as const;
