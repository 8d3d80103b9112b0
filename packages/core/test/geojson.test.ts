// Region tracing for the QuPath GeoJSON (rings, holes, diagonal contacts) and the flagged patches' union it traces.
import { expect, test } from 'vitest';
import { geoJsonChunks, patchUnionGrid, scanGeoJson, traceCells } from '../dist/index.js';

const grid = (rows: string[]) => ({
  filled: (c: number, r: number) => rows[r]![c] === '#',
  columns: rows[0]!.length,
  rows: rows.length,
});
const trace = (rows: string[]) => {
  const g = grid(rows);
  return traceCells(g.filled, g.columns, g.rows);
};
const area = (ring: [number, number][]) => ring.reduce((s, p, i) => { const q = ring[(i + 1) % ring.length]!; return s + p[0] * q[1] - q[0] * p[1]; }, 0) / 2;

test('one cell is one square', () => {
  expect(trace(['.#.'])).toEqual([[[[1, 0], [2, 0], [2, 1], [1, 1]]]]);
});

test('a ring of cells is one polygon with one hole', () => {
  const polys = trace(['###', '#.#', '###']);
  expect(polys).toHaveLength(1);
  expect(polys[0]).toHaveLength(2);
  expect(area(polys[0]![0]!)).toBe(9);
  expect(area(polys[0]![1]!)).toBe(-1);
});

test('cells touching at a corner stay separate polygons', () => {
  const polys = trace(['#.', '.#']);
  expect(polys).toHaveLength(2);
  for (const p of polys) expect(area(p[0]!)).toBe(1);
});

test('an L shape is one 6-vertex ring; two blobs with a hole each keep their own holes', () => {
  const l = trace(['#.', '##']);
  expect(l).toHaveLength(1);
  expect(l[0]![0]).toHaveLength(6);
  const two = trace(['###.###', '#.#.#.#', '###.###']);
  expect(two).toHaveLength(2);
  for (const p of two) {
    expect(p).toHaveLength(2);
    expect(area(p[0]!)).toBe(9);
  }
});

// The out-of-focus area is the union of the flagged patches: checked pixel by pixel against a direct
// test of every patch, on random grids with overlapping, touching and gapped strides and background.
test('patchUnionGrid: every pixel is flagged exactly when a patch above the threshold covers it', () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 40; trial++) {
    const patchSize = 2 + Math.floor(random() * 9);
    const stride = 1 + Math.floor(random() * 12);
    const columns = 1 + Math.floor(random() * 7);
    const rows = 1 + Math.floor(random() * 7);
    const scores = Float32Array.from({ length: columns * rows }, () => (random() < 0.2 ? Number.NaN : random() * 10));
    const threshold = 5;
    const scan = { columns, rows, stride, patchSize, scores, summary: { threshold } } as unknown as Parameters<typeof patchUnionGrid>[0];
    const grid = patchUnionGrid(scan)!;
    expect(grid.xs[0]).toBe(0);
    expect(grid.xs.at(-1)).toBe((columns - 1) * stride + patchSize);
    for (let y = 0; y < grid.ys.at(-1)!; y++)
      for (let x = 0; x < grid.xs.at(-1)!; x++) {
        let flagged = false;
        let scored = false;
        for (let r = 0; r < rows; r++)
          for (let c = 0; c < columns; c++) {
            if (x < c * stride || x >= c * stride + patchSize || y < r * stride || y >= r * stride + patchSize) continue;
            const s = scores[r * columns + c]!;
            if (!Number.isNaN(s)) scored = true;
            if (s > threshold) flagged = true;
          }
        const c = grid.xs.findIndex((e, i) => e <= x && x < grid.xs[i + 1]!);
        const r = grid.ys.findIndex((e, i) => e <= y && y < grid.ys[i + 1]!);
        expect(grid.flagged[r * grid.columns + c], `trial ${trial} pixel ${x},${y}`).toBe(flagged ? 1 : 0);
        expect(grid.scored[r * grid.columns + c], `trial ${trial} pixel ${x},${y}`).toBe(scored ? 1 : 0);
      }
  }
  const none = { columns: 1, rows: 1, stride: 4, patchSize: 4, scores: new Float32Array([9]), summary: { threshold: null } } as unknown as Parameters<typeof patchUnionGrid>[0];
  expect(patchUnionGrid(none)).toBeNull();
});

test('geoJsonChunks writes the text of JSON.stringify(scanGeoJson(scan)), with and without a threshold', () => {
  // The report writes its GeoJSON from geoJsonChunks, which puts the detections' text together
  // itself: it must stay the text JSON.stringify makes of the features' objects.
  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const columns = 9;
  const rows = 7;
  const scores = Float32Array.from({ length: columns * rows }, () => (random() < 0.2 ? Number.NaN : random() * 10 - 2));
  scores[3] = Number.POSITIVE_INFINITY; // written as null, as JSON.stringify does
  const tissue = Float32Array.from({ length: columns * rows }, () => random());
  for (const threshold of [5, null]) {
    const scan = { columns, rows, stride: 24, patchSize: 32, level0PerWorkingPixel: 1.37, scores, tissue, summary: { threshold } } as unknown as Parameters<typeof scanGeoJson>[0];
    expect([...geoJsonChunks(scan)].join('')).toBe(JSON.stringify(scanGeoJson(scan)) + '\n');
  }
});
