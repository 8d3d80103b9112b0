/**
 * The out-of-focus area of a scan: the union of the patches scoring above the threshold, on the
 * exact grid their edges cut the slide into.
 *
 * Why the union and not each patch's centre cell: a patch's score says how defocused its content is
 * as a whole, and for FocusLiteNN (a min over the patch) "out of focus" means no part of the patch is
 * sharp, so every pixel of a flagged patch is out of focus, including those near a region's edge whose
 * own centred patch also holds sharp tissue and scores in focus. The flagged regions' areas were
 * always this union; the GeoJSON and the demo's IoU use the same area.
 */
import { summedArea, type SummedArea } from '../summed-area.js';
import type { ScanResult } from './scan-slide.js';

export interface PatchUnionGrid {
  /** Cell edges in working pixels along x and y: every patch's left/top and right/bottom edge. */
  xs: number[];
  ys: number[];
  columns: number;
  rows: number;
  /** Row-major per cell: 1 where some patch above the threshold covers the cell. */
  flagged: Uint8Array;
  /** Row-major per cell: 1 where some scored (tissue) patch covers the cell. */
  scored: Uint8Array;
}

/** Sorted distinct patch edges along one axis: n patches of `patch` px every `stride` px. */
function patchEdges(n: number, stride: number, patch: number): number[] {
  const edges = new Set<number>();
  for (let i = 0; i < n; i++) edges.add(i * stride).add(i * stride + patch);
  return [...edges].sort((a, b) => a - b);
}

/**
 * The cells between consecutive patch edges, each marked flagged when a patch above the threshold
 * contains it and scored when any scored patch does. Null without a threshold (nothing is flagged).
 */
export function patchUnionGrid(r: ScanResult): PatchUnionGrid | null {
  const threshold = r.summary.threshold;
  if (threshold === null) return null;
  const { columns: patchColumns, rows: patchRows, stride, patchSize, scores } = r;
  const xs = patchEdges(patchColumns, stride, patchSize);
  const ys = patchEdges(patchRows, stride, patchSize);
  const above = summedArea(patchColumns, patchRows, (i) => (scores[i]! > threshold ? 1 : 0));
  const scoredPatches = summedArea(patchColumns, patchRows, (i) => (Number.isNaN(scores[i]!) ? 0 : 1));
  // Patches containing the span [a, b): index i with i * stride <= a and b <= i * stride + patch.
  const containing = (a: number, b: number, n: number): [number, number] => [Math.max(0, Math.ceil((b - patchSize) / stride)), Math.min(n - 1, Math.floor(a / stride))];
  const columnSpans = xs.slice(1).map((b, i) => containing(xs[i]!, b, patchColumns));
  const rowSpans = ys.slice(1).map((b, i) => containing(ys[i]!, b, patchRows));
  const columns = columnSpans.length;
  const rows = rowSpans.length;
  const flagged = new Uint8Array(columns * rows);
  const scored = new Uint8Array(columns * rows);
  // Patch spans are inclusive index ranges; an empty one (c0 > c1) counts nothing.
  const count = (patches: SummedArea, [c0, c1]: [number, number], [r0, r1]: [number, number]) => patches.sum(c0, r0, c1 + 1, r1 + 1);
  for (let row = 0; row < rows; row++)
    for (let c = 0; c < columns; c++) {
      flagged[row * columns + c] = count(above, columnSpans[c]!, rowSpans[row]!) > 0 ? 1 : 0;
      scored[row * columns + c] = count(scoredPatches, columnSpans[c]!, rowSpans[row]!) > 0 ? 1 : 0;
    }
  return { xs, ys, columns, rows, flagged, scored };
}
