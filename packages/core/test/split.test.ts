// Seeded shuffles and splits of training data: the one Fisher-Yates shuffle is uniform over
// permutations (a random comparator in sort() is not), and synthetic patches are split by source crop,
// so the defocus levels of one tissue crop never land on both sides of a split.
import { describe, expect, test } from 'vitest';
import { scannerDefocus, seededRandom, shuffle, splitByCrop, splitDataset, type PatchSet } from '../dist/index.js';
import { hasShared, shared } from '../../../test/helpers/shared.js';

describe('shuffle', () => {
  // 6 permutations x 1000 expected each; chi-square with 5 degrees of freedom exceeds 20.5 with
  // probability 0.001. Sorting by `random() - 0.5` (V8's sort) scores in the hundreds here.
  test('every permutation of 3 items equally often over 6000 seeds (chi-square < 20.5)', () => {
    const counts = new Map<string, number>();
    for (let seed = 1; seed <= 6000; seed++) {
      const key = shuffle(['a', 'b', 'c'], seededRandom(seed)).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['abc', 'acb', 'bac', 'bca', 'cab', 'cba']);
    const chiSquare = [...counts.values()].reduce((sum, n) => sum + (n - 1000) ** 2 / 1000, 0);
    expect(chiSquare).toBeLessThan(20.5);
  });

  test('the same test detects a biased shuffle (sorting by a random comparator)', () => {
    const counts = new Map<string, number>();
    for (let seed = 1; seed <= 6000; seed++) {
      const random = seededRandom(seed);
      const key = ['a', 'b', 'c'].sort(() => random() - 0.5).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const chiSquare = ['abc', 'acb', 'bac', 'bca', 'cab', 'cba'].reduce((sum, k) => sum + ((counts.get(k) ?? 0) - 1000) ** 2 / 1000, 0);
    expect(chiSquare).toBeGreaterThan(20.5);
  });

  test('in place, a permutation, and the same for a seed', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = shuffle(items, seededRandom(3));
    expect(shuffled).toBe(items);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(shuffle(Array.from({ length: 50 }, (_, i) => i), seededRandom(3))).toEqual(shuffled);
    expect(shuffle(Array.from({ length: 50 }, (_, i) => i), seededRandom(4))).not.toEqual(shuffled);
  });

  test('splitDataset keeps a group on one side', () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ file: `${i}.png`, target: i % 3, label: i % 3, group: `slide${i % 8}` }));
    const split = splitDataset(items, { train: 0.5, validation: 0.25, test: 0.25 }, 9);
    const sides = new Map<string, Set<string>>();
    for (const part of ['train', 'validation', 'test'] as const) for (const item of split[part]) sides.set(item.group, (sides.get(item.group) ?? new Set()).add(part));
    expect(sides.size).toBe(8);
    for (const [group, parts] of sides) expect(parts.size, group).toBe(1);
  });
});

/** A patch set of `crops` crops with `perCrop` patches each; patch i's pixels all equal its crop id. */
function labelledSet(crops: number, perCrop: number): PatchSet {
  const count = crops * perCrop;
  const size = 2;
  const ids = Uint32Array.from({ length: count }, (_, i) => Math.floor(i / perCrop));
  const patches = new Uint8Array(count * size * size * 3);
  ids.forEach((crop, i) => patches.fill(crop, i * size * size * 3, (i + 1) * size * size * 3));
  return { patches, labels: Float32Array.from({ length: count }, (_, i) => i % perCrop), count, size, crops: ids };
}

/** The crop ids on each side, read from the pixels (not from `crops`), so a split that moved pixels and ids apart fails too. */
function cropsOf(set: PatchSet): Set<number> {
  const bytes = set.size * set.size * 3;
  return new Set(Array.from({ length: set.count }, (_, i) => set.patches[i * bytes]!));
}

describe('splitByCrop', () => {
  test('no crop on both sides; every patch on exactly one; at least the requested count first', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const data = labelledSet(25, 2);
      const { first, rest } = splitByCrop(data, 9, seededRandom(seed));
      expect(first.count + rest.count).toBe(50);
      expect(first.count).toBe(10); // 9 patches asked, whole crops of 2
      const a = cropsOf(first);
      const b = cropsOf(rest);
      expect(a.size + b.size).toBe(25);
      for (const crop of a) expect(b.has(crop), `crop ${crop} on both sides (seed ${seed})`).toBe(false);
      expect(Array.from(first.crops!)).toEqual(Array.from({ length: first.count }, (_, i) => first.patches[i * 12]));
    }
  });

  test('without crop ids every patch is its own crop (a per-patch split)', () => {
    const { crops: _, ...data } = labelledSet(10, 1);
    const { first, rest } = splitByCrop(data, 3, seededRandom(1));
    expect([first.count, rest.count]).toEqual([3, 7]);
    expect(first.crops).toBeUndefined();
  });
});

describe.skipIf(!hasShared)('scannerDefocus records the crop of each patch', () => {
  test('copies of one crop (all in focus: byte-identical) share an id, other crops do not; a split keeps them together', async () => {
    const data = await scannerDefocus({
      sources: [shared('data', 'tiles', 'ihc.png'), shared('data', 'tiles', 'medium-nuclei-score-level0.png')],
      count: 8, levelsPerCrop: 2, patchSize: 32, maxLevel: 4, inFocusShare: 1, seed: 5,
    });
    expect(Array.from(data.crops!)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
    const bytes = 32 * 32 * 3;
    const patch = (i: number) => Buffer.from(data.patches.subarray(i * bytes, (i + 1) * bytes));
    for (let i = 0; i < data.count; i++)
      for (let j = i + 1; j < data.count; j++) expect(patch(i).equals(patch(j)), `patches ${i} and ${j}`).toBe(data.crops![i] === data.crops![j]);
    const { first, rest } = splitByCrop(data, 5, seededRandom(2));
    const key = (set: PatchSet) => new Set(Array.from({ length: set.count }, (_, i) => Buffer.from(set.patches.subarray(i * bytes, (i + 1) * bytes)).toString('base64')));
    const seen = key(rest);
    for (const p of key(first)) expect(seen.has(p)).toBe(false);
    expect(first.count).toBe(6);
  });
});
