/**
 * Slides made for adversarial tests: a JPEG-tiled pyramidal TIFF of tissue-coloured noise (fast
 * to make at any size, every patch tissue), and the tile table of its level 0 read straight from
 * the TIFF so a test can damage one tile's bytes or its byte count.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';

/** size x size px at 0.5 µm/px, 256 px JPEG tiles, a pyramid down to one tile. */
export async function makeNoiseSlide(file: string, size: number): Promise<void> {
  // Independent noise per channel, tinted pink-purple: saturated, so every pixel is tissue.
  await sharp({ create: { width: size, height: size, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .linear([0.4, 0.35, 0.4], [150, 70, 120])
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 85, xres: 2000, yres: 2000, resolutionUnit: 'cm' })
    .toFile(file);
}

export interface TileTable {
  /** File offsets of the tile offset and byte count entries (u32 or u64 each). */
  offsetsAt: number;
  bytesAt: number;
  entryBytes: 4 | 8;
  offsets: number[];
  bytes: number[];
}

/** TileOffsets (324) and TileByteCounts (325) of the first IFD (level 0) of a little-endian TIFF or BigTIFF. */
export function levelZeroTiles(file: string): TileTable {
  const b = readFileSync(file);
  if (b.toString('latin1', 0, 2) !== 'II') throw new Error(`${file}: not a little-endian TIFF`);
  const big = b.readUInt16LE(2) === 43;
  const ifd = big ? Number(b.readBigUInt64LE(8)) : b.readUInt32LE(4);
  const count = big ? Number(b.readBigUInt64LE(ifd)) : b.readUInt16LE(ifd);
  const entrySize = big ? 20 : 12;
  const first = ifd + (big ? 8 : 2);
  const read = (at: number, type: number) => (type === 16 ? Number(b.readBigUInt64LE(at)) : type === 4 ? b.readUInt32LE(at) : b.readUInt16LE(at));
  const table: Partial<TileTable> = {};
  for (let i = 0; i < count; i++) {
    const e = first + i * entrySize;
    const tag = b.readUInt16LE(e);
    if (tag !== 324 && tag !== 325) continue;
    const type = b.readUInt16LE(e + 2);
    const n = big ? Number(b.readBigUInt64LE(e + 4)) : b.readUInt32LE(e + 4);
    const width = type === 16 ? 8 : type === 4 ? 4 : 2;
    const inline = n * width <= (big ? 8 : 4);
    const at = inline ? e + (big ? 12 : 8) : big ? Number(b.readBigUInt64LE(e + 12)) : b.readUInt32LE(e + 8);
    const values = Array.from({ length: n }, (_, k) => read(at + k * width, type));
    if (width === 2) throw new Error(`${file}: 16-bit tile table`);
    if (tag === 324) Object.assign(table, { offsetsAt: at, offsets: values, entryBytes: width });
    else Object.assign(table, { bytesAt: at, bytes: values });
  }
  if (!table.offsets || !table.bytes) throw new Error(`${file}: no tile table in the first IFD`);
  return table as TileTable;
}

/**
 * Overwrites the JPEG data of tile `index` (from byte `from` of the tile) with pseudo-random bytes.
 * No 0xFF is written, so inside the entropy-coded data no marker appears: libjpeg then only warns
 * ("Corrupt JPEG data: bad Huffman code") and decodes garbage, the case a reader must not ignore.
 */
export function damageTile(file: string, index: number, from = 0, length = Infinity): void {
  const b = readFileSync(file);
  const t = levelZeroTiles(file);
  const start = t.offsets[index]! + from;
  const end = Math.min(t.offsets[index]! + t.bytes[index]!, start + length);
  let x = 12345;
  for (let i = start; i < end; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = Math.min(0xfe, x >>> 24);
  }
  writeFileSync(file, b);
}

/**
 * Puts an end-of-image marker in the middle of tile `index`'s entropy-coded data: libjpeg warns
 * "Corrupt JPEG data: premature end of data segment" and fills the rest of the tile with grey.
 */
export function endTileEarly(file: string, index: number): void {
  const b = readFileSync(file);
  const t = levelZeroTiles(file);
  const at = t.offsets[index]! + Math.floor(t.bytes[index]! / 2);
  b[at] = 0xff;
  b[at + 1] = 0xd9;
  writeFileSync(file, b);
}

/** Sets tile `index`'s byte count in the table (e.g. to far more than the file holds). */
export function setTileByteCount(file: string, index: number, count: number): void {
  const b = readFileSync(file);
  const t = levelZeroTiles(file);
  const at = t.bytesAt + index * t.entryBytes;
  if (t.entryBytes === 8) b.writeBigUInt64LE(BigInt(count), at);
  else b.writeUInt32LE(count, at);
  writeFileSync(file, b);
}
