/** Flagged regions of a scan: groups of touching patches that score above the threshold. */
import type { ScanResult } from '../scan/scan-slide.js';

export interface FlaggedRegion {
  /** Bounding box in level-0 pixels (patch edges). */
  x: number;
  y: number;
  width: number;
  height: number;
  patches: number;
  meanScore: number;
  maxScore: number;
  /** Area of the patches' union in mm², when the slide's µm/px is known. */
  areaMm2: number | null;
}

/**
 * Connected groups (8-neighbourhood) of scored patches above the threshold, largest first. None
 * without a threshold.
 */
export function flaggedRegions(r: ScanResult): FlaggedRegion[] {
  const t = r.summary.threshold;
  if (t === null) return [];
  const { columns, rows, scores } = r;
  const flagged = (i: number) => scores[i]! > t; // NaN (background) is never flagged
  const seen = new Uint8Array(columns * rows);
  const k = r.level0PerWorkingPixel;
  const regions: FlaggedRegion[] = [];
  for (let start = 0; start < scores.length; start++) {
    if (seen[start] || !flagged(start)) continue;
    const stack = [start];
    seen[start] = 1;
    let [c0, c1, r0, r1] = [columns, 0, rows, 0];
    let sum = 0;
    let max = -Infinity;
    const cells: number[] = [];
    while (stack.length > 0) {
      const i = stack.pop()!;
      cells.push(i);
      const col = i % columns;
      const row = (i - col) / columns;
      [c0, c1, r0, r1] = [Math.min(c0, col), Math.max(c1, col), Math.min(r0, row), Math.max(r1, row)];
      sum += scores[i]!;
      max = Math.max(max, scores[i]!);
      for (let dr = -1; dr <= 1; dr++)
        for (let dc = -1; dc <= 1; dc++) {
          const c = col + dc;
          const rr = row + dr;
          if (c < 0 || rr < 0 || c >= columns || rr >= rows) continue;
          const j = rr * columns + c;
          if (!seen[j] && flagged(j)) {
            seen[j] = 1;
            stack.push(j);
          }
        }
    }
    const x = c0 * r.stride * k;
    const y = r0 * r.stride * k;
    regions.push({
      x: Math.round(x),
      y: Math.round(y),
      width: Math.round(((c1 - c0) * r.stride + r.patchSize) * k),
      height: Math.round(((r1 - r0) * r.stride + r.patchSize) * k),
      patches: cells.length,
      meanScore: sum / cells.length,
      maxScore: max,
      areaMm2: r.mpp === null ? null : unionArea(cells, columns, r.stride, r.patchSize) * (r.mpp / 1000) ** 2,
    });
  }
  return regions.sort((a, b) => b.patches - a.patches);
}

/** Exact area (working px²) of the union of the patches (they overlap when stride < patch). */
function unionArea(cells: number[], columns: number, stride: number, patchSize: number): number {
  const boxes = cells.map((i) => {
    const col = i % columns;
    const row = (i - col) / columns;
    return { x0: col * stride, x1: col * stride + patchSize, y0: row * stride, y1: row * stride + patchSize };
  });
  const ys = [...new Set(boxes.flatMap((b) => [b.y0, b.y1]))].sort((a, b) => a - b);
  let area = 0;
  for (let band = 0; band + 1 < ys.length; band++) {
    const [top, bottom] = [ys[band]!, ys[band + 1]!];
    const spans = boxes.filter((b) => b.y0 <= top && b.y1 >= bottom).map((b) => [b.x0, b.x1] as const).sort((a, b) => a[0] - b[0]);
    let covered = 0;
    let end = -Infinity;
    for (const [x0, x1] of spans) {
      if (x1 <= end) continue;
      covered += x1 - Math.max(x0, end);
      end = x1;
    }
    area += covered * (bottom - top);
  }
  return area;
}
