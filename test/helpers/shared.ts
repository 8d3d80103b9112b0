/**
 * Where the read-only shared material lives (../shared beside the repository). Tests that need
 * it call sharedOrSkip() so they skip with a printed reason when it is absent.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sharedRoot = process.env.FQA_SHARED ?? path.resolve(repoRoot, '..', 'shared');
export const hasShared = existsSync(path.join(sharedRoot, 'reference', 'focuslitenn', 'golden-scores.json'));
if (!hasShared) console.warn(`[fqa tests] skipping tests that need ${sharedRoot} (reference weights and data): not found`);

export function shared(...parts: string[]): string {
  return path.join(sharedRoot, ...parts);
}

export const tcgaImages = {
  'tcga-in-focus': 'TCGA@Focus_patch_i_32381_j_37784.png',
  'tcga-out-of-focus': 'TCGA@Focus_patch_i_9651_j_81514.png',
} as const;
