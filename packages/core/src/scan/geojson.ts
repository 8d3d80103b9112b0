/**
 * QuPath-importable GeoJSON of a scan: out-of-focus regions as polygons (with holes) traced around
 * the union of the patches above the threshold (flagged-area.ts says why the union), and one
 * detection per scored patch carrying its focus_score. Coordinates are level-0 pixels.
 */
import { patchUnionGrid, type PatchUnionGrid } from './flagged-area.js';
import type { ScanResult } from './scan-slide.js';

type Point = [number, number];

export const OUT_OF_FOCUS = { name: 'Out of focus', color: [230, 40, 40] as [number, number, number] };
export const IN_FOCUS = { name: 'In focus', color: [40, 170, 60] as [number, number, number] };

/**
 * Boundary rings of the filled cells of a columns x rows grid, in cell-corner coordinates.
 * Edges go clockwise on screen (y down) around filled cells, so outer rings have positive
 * shoelace area and holes negative. Returns polygons: [outer, ...holes].
 */
export function traceCells(filled: (col: number, row: number) => boolean, columns: number, rows: number): Point[][][] {
  // `filled` asked once per cell, into a grid with an empty border: the boundary test below reads
  // each cell's four neighbours, and a report traces grids of a cell per pair of patch edges.
  const padded = new Uint8Array((columns + 2) * (rows + 2));
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) if (filled(c, r)) padded[(r + 1) * (columns + 2) + c + 1] = 1;
  const at = (c: number, r: number) => padded[(r + 1) * (columns + 2) + c + 1] === 1;
  // Vertices (cell corners) as numbers, y * (columns + 1) + x: an edge list of arrays of numbers,
  // not of [x, y] pairs, is what keeps a large region's tracing quick.
  const stride = columns + 1;
  const outgoing = new Map<number, number[]>(); // start vertex -> end vertices
  const add = (from: number, to: number) => {
    const list = outgoing.get(from);
    if (list) list.push(to);
    else outgoing.set(from, [to]);
  };
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < columns; c++) {
      if (!at(c, r)) continue;
      const corner = r * stride + c; // [c, r]
      if (!at(c, r - 1)) add(corner, corner + 1);
      if (!at(c + 1, r)) add(corner + 1, corner + stride + 1);
      if (!at(c, r + 1)) add(corner + stride + 1, corner + stride);
      if (!at(c - 1, r)) add(corner + stride, corner);
    }
  const vertexAt = (x: number, y: number) => (x >= 0 && x < stride && y >= 0 ? y * stride + x : -1);
  const rings: Point[][] = [];
  for (const [start, ends] of outgoing) {
    while (ends.length > 0) {
      const ring: number[] = [start];
      let prev = start;
      let next = ends.pop()!;
      while (next !== start) {
        ring.push(next);
        const options = outgoing.get(next)!;
        // At a vertex where two cells touch diagonally, turn right (keep hugging the same cell).
        const x = next % stride;
        const y = (next - x) / stride;
        const dx = x - (prev % stride);
        const dy = y - (prev - (prev % stride)) / stride;
        let pick = options.indexOf(vertexAt(x - dy, y + dx));
        if (pick < 0) pick = options.indexOf(vertexAt(x + dx, y + dy));
        if (pick < 0) pick = 0;
        prev = next;
        next = options.splice(pick, 1)[0]!;
      }
      rings.push(simplify(ring.map((v): Point => [v % stride, (v - (v % stride)) / stride])));
    }
  }
  const area = (ring: Point[]) => ring.reduce((s, p, i) => { const q = ring[(i + 1) % ring.length]!; return s + p[0] * q[1] - q[0] * p[1]; }, 0);
  const outers = rings.filter((r) => area(r) > 0).map((r) => [r]);
  for (const hole of rings.filter((r) => area(r) < 0)) {
    // A point just inside the filled cell on the hole's first edge (the filled side is the right).
    const a = hole[0]!;
    const b = hole[1]!;
    const d: Point = [b[0] - a[0], b[1] - a[1]];
    const probe: Point = [(a[0] + b[0]) / 2 - 0.25 * d[1], (a[1] + b[1]) / 2 + 0.25 * d[0]];
    const owner = outers.find((poly) => contains(poly[0]!, probe));
    if (owner) owner.push(hole);
  }
  return outers;
}

/** Drops the vertices in the middle of straight runs. */
function simplify(ring: Point[]): Point[] {
  return ring.filter((p, i) => {
    const a = ring[(i - 1 + ring.length) % ring.length]!;
    const b = ring[(i + 1) % ring.length]!;
    return (p[0] - a[0]) * (b[1] - p[1]) - (p[1] - a[1]) * (b[0] - p[0]) !== 0;
  });
}

function contains(ring: Point[], [x, y]: Point): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * The polygons (closed rings, level-0 pixels) around the cells of a patch-union grid that `filled`
 * marks: the out-of-focus annotations here, the usable-tissue area in usable-tissue.ts.
 */
export function gridPolygons(grid: PatchUnionGrid, filled: (cell: number) => boolean, level0PerWorkingPixel: number): Point[][][] {
  const toLevel0 = ([i, j]: Point): Point => [Math.round(grid.xs[i]! * level0PerWorkingPixel), Math.round(grid.ys[j]! * level0PerWorkingPixel)];
  return traceCells((c, row) => filled(row * grid.columns + c), grid.columns, grid.rows).map((polygon) => polygon.map((ring) => [...ring.map(toLevel0), toLevel0(ring[0]!)]));
}

/** The FeatureCollection as one object (small scans, tests); reports write geoJsonChunks. */
export function scanGeoJson(r: ScanResult): object {
  return { type: 'FeatureCollection', features: [...geoJsonFeatures(r)] };
}

/** The out-of-focus annotations: polygons around the union of the patches above the threshold. */
function* outOfFocusAnnotations(r: ScanResult, union: PatchUnionGrid | null): Generator<object> {
  if (!union) return;
  for (const coordinates of gridPolygons(union, (cell) => union.flagged[cell] === 1, r.level0PerWorkingPixel)) {
    yield {
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates },
      properties: { objectType: 'annotation', name: 'Out of focus', classification: OUT_OF_FOCUS, isLocked: false },
    };
  }
}

/** A detection's tissue measurement: the patch's tissue in percent, two decimals (QuPath shows it as is). */
const patchTissuePct = (r: ScanResult, patch: number) => Number((100 * r.tissue[patch]!).toFixed(2));

/**
 * The features one at a time: a dense grid (patch 8, stride 1) has millions of detections, more
 * than one JSON string or one array of objects can hold. `union` is patchUnionGrid(r), when the
 * caller has it already.
 */
export function* geoJsonFeatures(r: ScanResult, union: PatchUnionGrid | null = patchUnionGrid(r)): Generator<object> {
  yield* outOfFocusAnnotations(r, union);
  const k = r.level0PerWorkingPixel;
  const threshold = r.summary.threshold;
  const size = Math.round(r.patchSize * k);
  for (let row = 0; row < r.rows; row++)
    for (let c = 0; c < r.columns; c++) {
      const s = r.scores[row * r.columns + c]!;
      if (Number.isNaN(s)) continue;
      const x = Math.round(c * r.stride * k);
      const y = Math.round(row * r.stride * k);
      yield {
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]] },
        properties: {
          objectType: 'detection',
          ...(threshold !== null ? { classification: s > threshold ? OUT_OF_FOCUS : IN_FOCUS } : {}),
          measurements: { focus_score: s, tissue_pct: patchTissuePct(r, row * r.columns + c) },
        },
      };
    }
}

/** A number as JSON.stringify writes it (non-finite numbers are null). */
const jsonNumber = (v: number) => (Number.isFinite(v) ? String(v) : 'null');

/**
 * The FeatureCollection as JSON text, in chunks: the text of JSON.stringify(scanGeoJson(r)) and a
 * newline, without ever holding it all. The detections' text is put together directly, the same
 * characters JSON.stringify writes for geoJsonFeatures' objects: making and stringifying an object
 * per patch was most of the time the GeoJSON took. `union` is patchUnionGrid(r), when the caller
 * has it already.
 */
export function* geoJsonChunks(r: ScanResult, union: PatchUnionGrid | null = patchUnionGrid(r)): Generator<string> {
  yield '{"type":"FeatureCollection","features":[';
  let first = true;
  for (const feature of outOfFocusAnnotations(r, union)) {
    yield (first ? '' : ',') + JSON.stringify(feature);
    first = false;
  }
  const k = r.level0PerWorkingPixel;
  const threshold = r.summary.threshold;
  const size = Math.round(r.patchSize * k);
  const outOfFocus = `"classification":${JSON.stringify(OUT_OF_FOCUS)},`;
  const inFocus = `"classification":${JSON.stringify(IN_FOCUS)},`;
  for (let row = 0; row < r.rows; row++) {
    // One chunk per row of patches.
    let text = '';
    const y = Math.round(row * r.stride * k);
    for (let c = 0; c < r.columns; c++) {
      const s = r.scores[row * r.columns + c]!;
      if (Number.isNaN(s)) continue;
      const x = Math.round(c * r.stride * k);
      const classification = threshold === null ? '' : s > threshold ? outOfFocus : inFocus;
      text += `${first ? '' : ','}{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[${x},${y}],[${x + size},${y}],[${x + size},${y + size}],[${x},${y + size}],[${x},${y}]]]},` +
        `"properties":{"objectType":"detection",${classification}"measurements":{"focus_score":${jsonNumber(s)},"tissue_pct":${jsonNumber(patchTissuePct(r, row * r.columns + c))}}}}`;
      first = false;
    }
    if (text) yield text;
  }
  yield ']}\n';
}
