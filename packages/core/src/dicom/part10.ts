/**
 * A DICOM Part 10 reader for what a whole-slide image needs and no more: the 128-byte preamble and
 * "DICM", the File Meta group (explicit VR little endian), then the dataset in explicit VR little
 * endian, with sequences of defined and undefined length and encapsulated Pixel Data (the Basic
 * Offset Table and one fragment per frame). Pixel bytes are never read here: the layout records
 * where each frame's fragment lies, and the slide reads the fragments a region touches.
 *
 * Every length is checked against the end of its enclosing item and the file before anything is
 * read or allocated, so a truncated or hostile file is one DicomFormatError, never a crash or a
 * huge allocation. Values are kept only when small (MAX_KEPT_VALUE_BYTES) and sequences only where
 * the slide reads them (KEPT_SEQUENCES): a PerFrameFunctionalGroupsSequence of 100,000 items is
 * walked, not held.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** A problem with the file's DICOM structure; the caller names the file. */
export class DicomFormatError extends Error {}

/** `(gggg,eeee)` as one number. */
export type Tag = number;
export const tag = (group: number, element: number): Tag => ((group << 16) | element) >>> 0;

export const TAGS = {
  transferSyntax: tag(0x0002, 0x0010),
  mediaStorageSopClass: tag(0x0002, 0x0002),
  sopClass: tag(0x0008, 0x0016),
  imageType: tag(0x0008, 0x0008),
  seriesInstanceUid: tag(0x0020, 0x000e),
  dimensionOrganizationType: tag(0x0020, 0x9311),
  samplesPerPixel: tag(0x0028, 0x0002),
  photometricInterpretation: tag(0x0028, 0x0004),
  numberOfFrames: tag(0x0028, 0x0008),
  rows: tag(0x0028, 0x0010),
  columns: tag(0x0028, 0x0011),
  bitsAllocated: tag(0x0028, 0x0100),
  imagedVolumeWidth: tag(0x0048, 0x0001),
  totalPixelMatrixColumns: tag(0x0048, 0x0006),
  totalPixelMatrixRows: tag(0x0048, 0x0007),
  numberOfOpticalPaths: tag(0x0048, 0x0302),
  totalPixelMatrixFocalPlanes: tag(0x0048, 0x0303),
  sharedFunctionalGroups: tag(0x5200, 0x9229),
  pixelMeasures: tag(0x0028, 0x9110),
  pixelSpacing: tag(0x0028, 0x0030),
  pixelData: tag(0x7fe0, 0x0010),
  item: tag(0xfffe, 0xe000),
  itemEnd: tag(0xfffe, 0xe00d),
  sequenceEnd: tag(0xfffe, 0xe0dd),
} as const;

/** Sequences whose contents are kept (everything under them); all others are walked and dropped. */
const KEPT_SEQUENCES = new Set<Tag>([TAGS.sharedFunctionalGroups]);

/** Values longer than this are skipped, not read: every tag fqa reads is a few bytes. */
const MAX_KEPT_VALUE_BYTES = 64 * 1024;

/** Sequences nest a few levels in real files; a hostile file nesting thousands would exhaust the stack. */
const MAX_SEQUENCE_DEPTH = 16;

const UNDEFINED_LENGTH = 0xffffffff;

/** VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

export interface DicomElement {
  vr: string;
  /** The value bytes (kept values only), or the items of a kept sequence. */
  value: Buffer | DicomDataset[];
}

export type DicomDataset = Map<Tag, DicomElement>;

/** Where each frame's JPEG bytes lie in the file. */
export interface PixelLayout {
  /** Byte offset and length of frame i's single fragment. */
  frames: { offset: number; length: number }[];
}

export interface DicomHeader {
  meta: DicomDataset;
  dataset: DicomDataset;
  transferSyntax: string;
  /** Offset of the Pixel Data element, or null when the file has none. */
  pixelDataOffset: number | null;
}

/**
 * Positional reads from an open file, through one cached block so that walking thousands of small
 * elements costs few system calls. Every read is bounds-checked against the file size first.
 */
export class FileBytes {
  private block: Buffer = Buffer.alloc(0);
  private blockStart = 0;
  readonly size: number;

  constructor(private readonly fd: number) {
    this.size = fstatSync(fd).size;
  }

  static open(file: string): FileBytes {
    return new FileBytes(openSync(file, 'r'));
  }

  close(): void {
    closeSync(this.fd);
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DicomFormatError(`truncated: needs bytes ${offset}-${offset + length} but the file has ${this.size}`);
    }
    if (offset >= this.blockStart && offset + length <= this.blockStart + this.block.length) {
      return this.block.subarray(offset - this.blockStart, offset - this.blockStart + length);
    }
    if (length > 64 * 1024) return this.readDirect(offset, length);
    this.blockStart = offset;
    this.block = this.readDirect(offset, Math.min(64 * 1024, this.size - offset));
    return this.block.subarray(0, length);
  }

  /** A read past the cache (used for scattered small reads that would waste a block each). */
  readDirect(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DicomFormatError(`truncated: needs bytes ${offset}-${offset + length} but the file has ${this.size}`);
    }
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new DicomFormatError(`truncated: the file ended at byte ${offset + done} while reading`);
      done += n;
    }
    return out;
  }
}

/** True when the bytes at 128 are "DICM" (a Part 10 file, whatever its name). */
export function hasDicomMagic(bytes: FileBytes): boolean {
  return bytes.size >= 132 && bytes.readDirect(128, 4).toString('latin1') === 'DICM';
}

function hex(t: Tag): string {
  return `(${(t >>> 16).toString(16).padStart(4, '0')},${(t & 0xffff).toString(16).padStart(4, '0')})`.toUpperCase();
}

/**
 * Reads the File Meta group and the dataset up to Pixel Data. The dataset is parsed only when its
 * transfer syntax is explicit VR little endian (the caller refuses the others by name).
 */
export function readHeader(bytes: FileBytes): DicomHeader {
  if (!hasDicomMagic(bytes)) throw new DicomFormatError('no "DICM" at byte 128: not a DICOM Part 10 file');
  const meta = new Map<Tag, DicomElement>();
  let pos = 132;
  // File Meta is explicit VR LE whatever the dataset uses; it ends where group 2 ends.
  while (pos + 8 <= bytes.size && bytes.read(pos, 2).readUInt16LE(0) === 0x0002) {
    pos = readElement(bytes, pos, bytes.size, meta, 0, true).next;
  }
  const transferSyntax = text(meta.get(TAGS.transferSyntax));
  if (!transferSyntax) throw new DicomFormatError('no Transfer Syntax UID (0002,0010) in the File Meta group');
  const dataset = new Map<Tag, DicomElement>();
  if (!EXPLICIT_LITTLE_ENDIAN.has(transferSyntax)) return { meta, dataset, transferSyntax, pixelDataOffset: null };
  while (pos < bytes.size) {
    const t = readTag(bytes, pos);
    if (t === TAGS.pixelData) return { meta, dataset, transferSyntax, pixelDataOffset: pos };
    pos = readElement(bytes, pos, bytes.size, dataset, 0, true).next;
  }
  return { meta, dataset, transferSyntax, pixelDataOffset: null };
}

/** Transfer syntaxes whose dataset is explicit VR little endian (pixel data encoding aside). */
const EXPLICIT_LITTLE_ENDIAN = new Set([
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2.4.50',
  '1.2.840.10008.1.2.4.51',
  '1.2.840.10008.1.2.4.57',
  '1.2.840.10008.1.2.4.70',
  '1.2.840.10008.1.2.4.80',
  '1.2.840.10008.1.2.4.81',
  '1.2.840.10008.1.2.4.90',
  '1.2.840.10008.1.2.4.91',
  '1.2.840.10008.1.2.4.201',
  '1.2.840.10008.1.2.4.202',
  '1.2.840.10008.1.2.4.203',
  '1.2.840.10008.1.2.5',
]);

/** Where a length runs past: the file (truncated or damaged) or the enclosing item. */
function beyond(bytes: FileBytes, end: number): string {
  return end === bytes.size ? `beyond the end of the file (${bytes.size} bytes): truncated or damaged` : `beyond the end of its item (byte ${end})`;
}

function readTag(bytes: FileBytes, pos: number): Tag {
  const b = bytes.read(pos, 4);
  return tag(b.readUInt16LE(0), b.readUInt16LE(2));
}

/**
 * One element at `pos` (which must end by `end`): stored into `into` when `keep`, and the offset
 * after it returned. Sequences recurse; undefined lengths are walked to their delimiter.
 */
function readElement(bytes: FileBytes, pos: number, end: number, into: DicomDataset, depth: number, keep: boolean): { next: number } {
  const head = bytes.read(pos, 8);
  const t = tag(head.readUInt16LE(0), head.readUInt16LE(2));
  const vr = head.toString('latin1', 4, 6);
  if (!/^[A-Z]{2}$/.test(vr)) throw new DicomFormatError(`element ${hex(t)} at byte ${pos} has no explicit VR ("${vr.replace(/[^\x20-\x7e]/g, '?')}")`);
  let length: number;
  let valueStart: number;
  if (LONG_VRS.has(vr)) {
    length = bytes.read(pos + 8, 4).readUInt32LE(0);
    valueStart = pos + 12;
  } else {
    length = head.readUInt16LE(6);
    valueStart = pos + 8;
  }
  if (vr === 'SQ') {
    const items: DicomDataset[] = [];
    const keepItems = keep && (depth > 0 || KEPT_SEQUENCES.has(t));
    const next = readSequence(bytes, valueStart, length, end, items, depth + 1, keepItems, t);
    if (keepItems) into.set(t, { vr, value: items });
    return { next };
  }
  if (length === UNDEFINED_LENGTH) throw new DicomFormatError(`element ${hex(t)} (${vr}) at byte ${pos} has an undefined length, which only sequences and Pixel Data may have`);
  if (valueStart + length > end) throw new DicomFormatError(`element ${hex(t)} at byte ${pos} declares ${length} bytes, ${beyond(bytes, end)}`);
  if (keep && length <= MAX_KEPT_VALUE_BYTES) into.set(t, { vr, value: Buffer.from(bytes.read(valueStart, length)) });
  return { next: valueStart + length };
}

/** A sequence's items, from `start`, of defined `length` or up to the sequence delimiter. */
function readSequence(bytes: FileBytes, start: number, length: number, end: number, items: DicomDataset[], depth: number, keep: boolean, owner: Tag): number {
  if (depth > MAX_SEQUENCE_DEPTH) throw new DicomFormatError(`sequences nested deeper than ${MAX_SEQUENCE_DEPTH} levels at byte ${start}`);
  const defined = length !== UNDEFINED_LENGTH;
  if (defined && start + length > end) throw new DicomFormatError(`sequence ${hex(owner)} declares ${length} bytes, ${beyond(bytes, end)}`);
  const seqEnd = defined ? start + length : end;
  // A defined-length sequence nobody reads is skipped whole.
  if (defined && !keep) return seqEnd;
  let pos = start;
  for (;;) {
    if (defined && pos >= seqEnd) return seqEnd;
    const head = bytes.read(pos, 8);
    const t = tag(head.readUInt16LE(0), head.readUInt16LE(2));
    const itemLength = head.readUInt32LE(4);
    if (t === TAGS.sequenceEnd) {
      if (defined) throw new DicomFormatError(`sequence delimiter inside the defined-length sequence ${hex(owner)} at byte ${pos}`);
      return pos + 8;
    }
    if (t !== TAGS.item) throw new DicomFormatError(`expected an item in sequence ${hex(owner)} at byte ${pos}, found ${hex(t)}`);
    const item = new Map<Tag, DicomElement>();
    pos = readItem(bytes, pos + 8, itemLength, seqEnd, item, depth, keep);
    if (keep) items.push(item);
  }
}

/** One sequence item's elements, of defined length or up to the item delimiter. */
function readItem(bytes: FileBytes, start: number, length: number, end: number, into: DicomDataset, depth: number, keep: boolean): number {
  const defined = length !== UNDEFINED_LENGTH;
  if (defined && start + length > end) throw new DicomFormatError(`item at byte ${start - 8} declares ${length} bytes, beyond the end of its sequence (byte ${end})`);
  if (defined && !keep) return start + length;
  const itemEnd = defined ? start + length : end;
  let pos = start;
  for (;;) {
    if (defined && pos >= itemEnd) return itemEnd;
    if (!defined && readTag(bytes, pos) === TAGS.itemEnd) return pos + 8;
    pos = readElement(bytes, pos, itemEnd, into, depth, keep).next;
  }
}

/**
 * The frames of encapsulated Pixel Data at `offset`: the Basic Offset Table item (possibly empty)
 * then one fragment per frame up to the sequence delimiter. Walked item by item (8 bytes read per
 * frame, the JPEG bytes skipped); a BOT that is present must agree with the fragments.
 */
export function readPixelLayout(bytes: FileBytes, offset: number, expectedFrames: number): PixelLayout {
  const head = bytes.read(offset, 12);
  const vr = head.toString('latin1', 4, 6);
  const length = head.readUInt32LE(8);
  if (length !== UNDEFINED_LENGTH) throw new DicomFormatError(`Pixel Data (${vr}) has a defined length of ${length} bytes: not encapsulated (compressed) frames`);
  let pos = offset + 12;
  const botHead = bytes.readDirect(pos, 8);
  if (tag(botHead.readUInt16LE(0), botHead.readUInt16LE(2)) !== TAGS.item) throw new DicomFormatError(`encapsulated Pixel Data does not start with a Basic Offset Table item (byte ${pos})`);
  const botLength = botHead.readUInt32LE(4);
  if (botLength % 4 !== 0) throw new DicomFormatError(`Basic Offset Table length ${botLength} is not a multiple of 4`);
  if (botLength !== 0 && botLength !== expectedFrames * 4) throw new DicomFormatError(`Basic Offset Table lists ${botLength / 4} frames but NumberOfFrames is ${expectedFrames}`);
  const bot = botLength === 0 ? null : bytes.readDirect(pos + 8, botLength);
  pos += 8 + botLength;
  const firstFragment = pos;
  const frames: { offset: number; length: number }[] = [];
  for (;;) {
    const item = bytes.readDirect(pos, 8);
    const t = tag(item.readUInt16LE(0), item.readUInt16LE(2));
    if (t === TAGS.sequenceEnd) break;
    if (t !== TAGS.item) throw new DicomFormatError(`expected a Pixel Data fragment at byte ${pos}, found ${hex(t)}`);
    const fragmentLength = item.readUInt32LE(4);
    if (pos + 8 + fragmentLength > bytes.size) throw new DicomFormatError(`Pixel Data fragment ${frames.length + 1} at byte ${pos} declares ${fragmentLength} bytes, beyond the end of the file (${bytes.size} bytes)`);
    if (frames.length === expectedFrames) throw new DicomFormatError(`more Pixel Data fragments than NumberOfFrames (${expectedFrames}): several fragments per frame are not read`);
    if (bot && bot.readUInt32LE(frames.length * 4) !== pos - firstFragment) throw new DicomFormatError(`Basic Offset Table entry ${frames.length + 1} does not point at fragment ${frames.length + 1}: several fragments per frame are not read`);
    frames.push({ offset: pos + 8, length: fragmentLength });
    pos += 8 + fragmentLength;
  }
  if (frames.length !== expectedFrames) throw new DicomFormatError(`${frames.length} Pixel Data fragments for NumberOfFrames ${expectedFrames}`);
  return { frames };
}

/** A text value (UI, CS, LO, ...) trimmed of its padding; '' when absent. */
export function text(element: DicomElement | undefined): string {
  if (!element || !Buffer.isBuffer(element.value)) return '';
  return element.value.toString('latin1').replace(/[\0 ]+$/, '').trim();
}

/** A multi-valued text value split at backslashes. */
export function texts(element: DicomElement | undefined): string[] {
  const s = text(element);
  return s === '' ? [] : s.split('\\').map((v) => v.trim());
}

/** A numeric value (US, UL, IS, DS, first value); null when absent or unreadable. */
export function numberOf(element: DicomElement | undefined, index = 0): number | null {
  if (!element || !Buffer.isBuffer(element.value)) return null;
  const v = element.value;
  switch (element.vr) {
    case 'US':
      return v.length >= 2 * (index + 1) ? v.readUInt16LE(2 * index) : null;
    case 'UL':
      return v.length >= 4 * (index + 1) ? v.readUInt32LE(4 * index) : null;
    case 'IS':
    case 'DS': {
      const s = texts(element)[index];
      const n = s === undefined || s === '' ? Number.NaN : Number(s);
      return Number.isFinite(n) ? n : null;
    }
    default:
      return null;
  }
}
