// Region tracing for the QuPath GeoJSON: rings, holes and diagonal contacts on small grids.
import { expect, test } from 'vitest';
import { traceCells } from '../dist/index.js';

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
