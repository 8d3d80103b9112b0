/**
 * Summed-area tables: any axis-aligned box sum of a grid in four lookups, for per-patch counts
 * (tissue pixels under a patch, flagged patches over a cell) whose cost must not grow with the box.
 */

/** Box sums of a width x height grid of values(i) (i = y * width + x). */
export interface SummedArea {
  /** Sum over x in [x0, x1), y in [y0, y1); 0 for an empty box. */
  sum(x0: number, y0: number, x1: number, y1: number): number;
}

export function summedArea(width: number, height: number, value: (i: number) => number): SummedArea {
  const w = width + 1;
  // Float64: exact for integer sums up to 2^53.
  const table = new Float64Array(w * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    for (let x = 0; x < width; x++) {
      row += value(y * width + x);
      table[(y + 1) * w + x + 1] = table[y * w + x + 1]! + row;
    }
  }
  return {
    sum: (x0, y0, x1, y1) => (x0 >= x1 || y0 >= y1 ? 0 : table[y1 * w + x1]! - table[y0 * w + x1]! - table[y1 * w + x0]! + table[y0 * w + x0]!),
  };
}
