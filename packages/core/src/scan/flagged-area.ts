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
import { summedArea } from '../summed-area.js';
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
  // Patches containing the span [a, b): index i with i * stride <= a and b <= i * stride + patch,
  // first[j]..last[j] for the span of cell j (inclusive; first > last when none).
  const containing = (edges: number[], n: number) => {
    const first = new Int32Array(Math.max(0, edges.length - 1));
    const last = new Int32Array(first.length);
    for (let j = 0; j < first.length; j++) {
      first[j] = Math.max(0, Math.ceil((edges[j + 1]! - patchSize) / stride));
      last[j] = Math.min(n - 1, Math.floor(edges[j]! / stride));
    }
    return { first, last };
  };
  const columnSpans = containing(xs, patchColumns);
  const rowSpans = containing(ys, patchRows);
  const columns = columnSpans.first.length;
  const rows = rowSpans.first.length;
  const flagged = new Uint8Array(columns * rows);
  const scored = new Uint8Array(columns * rows);
  // Plain loops over typed arrays: the grid has a cell per pair of patch edges (four per patch),
  // and a report makes it once per slide, in code that has not had time to be optimised.
  for (let row = 0; row < rows; row++) {
    const r0 = rowSpans.first[row]!;
    const r1 = rowSpans.last[row]! + 1;
    for (let c = 0; c < columns; c++) {
      const c0 = columnSpans.first[c]!;
      const c1 = columnSpans.last[c]! + 1;
      flagged[row * columns + c] = above.sum(c0, r0, c1, r1) > 0 ? 1 : 0;
      scored[row * columns + c] = scoredPatches.sum(c0, r0, c1, r1) > 0 ? 1 : 0;
    }
  }
  return { xs, ys, columns, rows, flagged, scored };
}
