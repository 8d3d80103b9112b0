/**
 * The DARTS search space of DARTS-FQA (genotypes.py PRIMITIVES) and the rule that turns architecture
 * weights into a discrete genotype (DARTS, Liu et al. 2019, section 2.4; model_search.py genotype()).
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { parseGenotype, type DartsOp, type Genotype } from '../models/architectures/darts-fqa.js';

/** Candidate operations on every edge, in the order of the alpha columns. */
export const PRIMITIVES = ['none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5'] as const;
export type Primitive = (typeof PRIMITIVES)[number];

/** Edges of a cell with `steps` intermediate nodes: node i has one from each of the 2 + i earlier states. */
export function edgeCount(steps: number): number {
  return steps * (steps + 3) / 2;
}

/**
 * DARTS's derivation on the softmax-normalized weights [edge][op] (rows in edge order: node 0's two
 * edges, node 1's three, ...): each node keeps the two incoming edges whose strongest non-'none' op
 * is strongest (ties: the earlier edge), each with that op (ties: the earlier op). The cell outputs
 * the last `multiplier` nodes.
 */
export function deriveGenotype(weights: readonly (readonly number[])[], steps: number, multiplier = 1): Genotype {
  if (weights.length !== edgeCount(steps)) throw new Error(`deriveGenotype: ${weights.length} edges for ${steps} steps (expected ${edgeCount(steps)})`);
  const none = PRIMITIVES.indexOf('none');
  const best = (row: readonly number[]) => {
    let k = -1;
    for (let j = 0; j < row.length; j++) if (j !== none && (k < 0 || row[j]! > row[k]!)) k = j;
    return k;
  };
  const reduce: [DartsOp, number][] = [];
  let start = 0;
  for (let i = 0; i < steps; i++) {
    const inputs = Array.from({ length: 2 + i }, (_, j) => j);
    const strength = (j: number) => weights[start + j]![best(weights[start + j]!)]!;
    // A stable sort keeps the earlier edge on ties, as Python's sorted().
    const kept = [...inputs].sort((a, b) => strength(b) - strength(a)).slice(0, 2);
    for (const j of kept) reduce.push([PRIMITIVES[best(weights[start + j]!)] as DartsOp, j]);
    start += 2 + i;
  }
  return { reduce, concat: Array.from({ length: multiplier }, (_, j) => 2 + steps - multiplier + j) };
}

/** Softmax of each row. */
export function softmaxRows(alphas: readonly (readonly number[])[]): number[][] {
  return alphas.map((row) => {
    const top = Math.max(...row);
    const e = row.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  });
}

/** A genotype as `genotype.json` holds it ({ reduce, concat }, or a search's whole output with `genotype`). */
export function readGenotypeFile(file: string): Genotype {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`${file}: cannot read the genotype file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not a genotype file (invalid JSON: ${(err as Error).message})`, { cause: err });
  }
  return parseGenotype(raw, (message) => {
    throw new InputError(`${file}: ${message}`);
  });
}

/** The genotype in DARTS's own notation, for logs: reduce=[('max_pool_3x3', 0), ...] concat=[3]. */
export function formatGenotype(g: Genotype): string {
  return `reduce=[${g.reduce.map(([op, j]) => `('${op}', ${j})`).join(', ')}] concat=[${g.concat.join(', ')}]`;
}
