/**
 * The usable-tissue mask of a scan, for tiling pipelines (what HistoQC's mask is to labs): tissue
 * that was scored and found in focus. Two forms:
 *
 * - a PNG at the tissue mask's resolution (one byte per pixel: 255 usable, 0 not), whose µm per pixel
 *   and level-0 pixels per pixel are recorded in the report JSON (`usableTissue`);
 * - GeoJSON polygons in level-0 pixels: the union of the in-focus scored area on the patch grid's
 *   cells (patchUnionGrid: scored and not covered by any out-of-focus patch), the area the PNG's
 *   tissue is cut to.
 *
 * Tissue that was not scored (a patch below --min-tissue, the slide's edge) is not usable: nothing
 * says it is in focus. Without a threshold there is no in-focus verdict, so there is no mask.
 */
import sharp from 'sharp';
import { patchUnionGrid, type PatchUnionGrid } from './flagged-area.js';
import { gridPolygons } from './geojson.js';
import type { ScanResult } from './scan-slide.js';

export interface UsableTissue {
  width: number;
  height: number;
  /** 255 usable, 0 not; row-major at the tissue mask's size. */
  mask: Uint8Array;
  /** Level-0 pixels per mask pixel, and µm per mask pixel when the slide's resolution is known. */
  level0PerPixel: number;
  micronsPerPixel: number | null;
  /** Share of the slide's tissue that is usable, 0..1 (null without tissue). */
  usableFractionOfTissue: number | null;
}

/** Index of the cell [edges[i], edges[i+1]) holding v, or -1 outside the grid. */
function cellOf(edges: number[], v: number): number {
  if (v < edges[0]! || v >= edges[edges.length - 1]!) return -1;
  let lo = 0;
  let hi = edges.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= v) lo = mid;
    else hi = mid;
  }
  return lo;
}

const inFocusCell = (grid: PatchUnionGrid, index: number) => grid.scored[index] === 1 && grid.flagged[index] === 0;

/**
 * The mask, or null when the scan has no threshold (no in-focus verdict to cut by). `grid` is
 * patchUnionGrid(r), when the caller has it already.
 */
export function usableTissue(r: ScanResult, grid: PatchUnionGrid | null = patchUnionGrid(r)): UsableTissue | null {
  if (grid === null) return null;
  const { width, height, mask: tissue, level0PerMaskPixel } = r.tissueMask;
  const workingPerMask = level0PerMaskPixel / r.level0PerWorkingPixel;
  const mask = new Uint8Array(width * height);
  // The mask pixel's centre decides its cell: columns once, then each row.
  const columnCell = Int32Array.from({ length: width }, (_, x) => cellOf(grid.xs, (x + 0.5) * workingPerMask));
  let tissuePixels = 0;
  let usablePixels = 0;
  for (let y = 0; y < height; y++) {
    const row = cellOf(grid.ys, (y + 0.5) * workingPerMask);
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (tissue[i] !== 1) continue;
      tissuePixels++;
      const column = columnCell[x]!;
      if (row < 0 || column < 0 || !inFocusCell(grid, row * grid.columns + column)) continue;
      mask[i] = 255;
      usablePixels++;
    }
  }
  return {
    width, height, mask, level0PerPixel: level0PerMaskPixel,
    micronsPerPixel: r.slideMpp === null ? null : r.slideMpp * level0PerMaskPixel,
    usableFractionOfTissue: tissuePixels === 0 ? null : usablePixels / tissuePixels,
  };
}

export async function usableTissuePng(u: UsableTissue): Promise<Buffer> {
  // b-w: a one-channel PNG (sharp writes three channels from a one-channel raw input otherwise).
  return sharp(u.mask, { raw: { width: u.width, height: u.height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** The in-focus scored area as GeoJSON polygons in level-0 pixels (null without a threshold). */
export function usableTissueGeoJson(r: ScanResult, grid: PatchUnionGrid | null = patchUnionGrid(r)): object | null {
  if (grid === null) return null;
  const features = gridPolygons(grid, (cell) => inFocusCell(grid, cell), r.level0PerWorkingPixel).map((coordinates) => ({
    type: 'Feature',
    geometry: { type: 'Polygon', coordinates },
    properties: { objectType: 'annotation', name: 'Usable (in focus)', isLocked: false },
  }));
  return { type: 'FeatureCollection', features };
}
