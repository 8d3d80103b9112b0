/**
 * Joins single-image TIFF files (classic little-endian TIFF, as sharp writes them) into one file
 * whose directories follow each other: an Aperio-like pyramid with levels at the steps the caller
 * chose (libvips writes 2x pyramids only). The first file is copied as it is; each next file's
 * bytes are appended with every file offset in them (out-of-line tag values, tile and strip
 * offsets) moved by where they now start, and its directory is written again after them with
 * NewSubfileType = reduced-resolution image (OpenSlide's generic TIFF reader takes a directory after
 * the first as a level only then), linked from the previous last directory. Bench-only: the files
 * are ones the bench made itself.
 */
import { appendFileSync, closeSync, copyFileSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';

const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4 };
const NEW_SUBFILE_TYPE = 254;
const STRIP_OFFSETS = 273;
const TILE_OFFSETS = 324;

/** Offsets of the directories of a classic little-endian TIFF, and of its last next-directory field. */
function directories(bytes: Buffer): { ifds: number[]; lastNextField: number } {
  if (bytes.toString('latin1', 0, 2) !== 'II' || bytes.readUInt16LE(2) !== 42) throw new Error('tiff-chain: only classic little-endian TIFF');
  const ifds: number[] = [];
  let ifd = bytes.readUInt32LE(4);
  let lastNextField = 4;
  while (ifd !== 0) {
    ifds.push(ifd);
    lastNextField = ifd + 2 + 12 * bytes.readUInt16LE(ifd);
    ifd = bytes.readUInt32LE(lastNextField);
  }
  return { ifds, lastNextField };
}

/**
 * A single-directory file's bytes to append at `base`: its data with the offsets moved, then its
 * directory again (with NewSubfileType 1); where that directory and its next field now are.
 */
function appended(bytes: Buffer, base: number): { data: Buffer; ifd: number; nextField: number } {
  const { ifds } = directories(bytes);
  if (ifds.length !== 1) throw new Error('tiff-chain: each appended file must hold one image');
  const data = Buffer.from(bytes);
  const ifd = ifds[0]!;
  const entries: Buffer[] = [];
  for (let e = 0; e < bytes.readUInt16LE(ifd); e++) {
    const entry = Buffer.from(bytes.subarray(ifd + 2 + 12 * e, ifd + 14 + 12 * e));
    const tag = entry.readUInt16LE(0);
    const type = entry.readUInt16LE(2);
    const count = entry.readUInt32LE(4);
    if (tag === NEW_SUBFILE_TYPE) continue;
    const inline = (TYPE_BYTES[type] ?? 1) * count <= 4;
    const valueAt = inline ? ifd + 2 + 12 * e + 8 : entry.readUInt32LE(8);
    if (!inline) entry.writeUInt32LE(valueAt + base, 8);
    if (tag === TILE_OFFSETS || tag === STRIP_OFFSETS) {
      if (type !== 4) throw new Error('tiff-chain: only 32-bit tile and strip offsets');
      if (inline) entry.writeUInt32LE(entry.readUInt32LE(8) + base, 8);
      else for (let i = 0; i < count; i++) data.writeUInt32LE(bytes.readUInt32LE(valueAt + 4 * i) + base, valueAt + 4 * i);
    }
    entries.push(entry);
  }
  const subfile = Buffer.alloc(12);
  subfile.writeUInt16LE(NEW_SUBFILE_TYPE, 0);
  subfile.writeUInt16LE(4, 2); // LONG
  subfile.writeUInt32LE(1, 4);
  subfile.writeUInt32LE(1, 8); // FILETYPE_REDUCEDIMAGE
  entries.unshift(subfile); // tags in ascending order: 254 is below every other tag sharp writes
  const pad = bytes.length % 2; // TIFF offsets are word-aligned
  const directory = Buffer.alloc(2 + 12 * entries.length + 4);
  directory.writeUInt16LE(entries.length, 0);
  entries.forEach((entry, i) => entry.copy(directory, 2 + 12 * i));
  const at = bytes.length + pad;
  return { data: Buffer.concat([data, Buffer.alloc(pad), directory]), ifd: base + at, nextField: base + at + 2 + 12 * entries.length };
}

/** Writes `out`: the first file's directories, then each next file's, every file's pixel data unchanged. */
export function chainTiffs(out: string, files: string[]): void {
  copyFileSync(files[0]!, out);
  let lastNextField = directories(readFileSync(files[0]!)).lastNextField;
  for (const file of files.slice(1)) {
    let base = statSync(out).size;
    if (base % 2 === 1) {
      appendFileSync(out, Buffer.alloc(1));
      base++;
    }
    const part = appended(readFileSync(file), base);
    if (base + part.data.length >= 2 ** 32) throw new Error('tiff-chain: the joined file would need BigTIFF');
    appendFileSync(out, part.data);
    const fd = openSync(out, 'r+');
    const pointer = Buffer.alloc(4);
    pointer.writeUInt32LE(part.ifd);
    writeSync(fd, pointer, 0, 4, lastNextField);
    closeSync(fd);
    lastNextField = part.nextField;
  }
}
