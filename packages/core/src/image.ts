/** Decodes plain images (PNG, JPEG, TIFF, ...) to RGB u8 with sharp. */
import sharp from 'sharp';
import { InputError } from './errors.js';
import { MAX_DECODED_PIXELS } from './limits.js';

export interface RgbImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  /** Bytes between rows. */
  rowStride: number;
}

/**
 * 16-bit greyscale (fluorescence microscopy, e.g. BBBC006) to 8 bits. Such files usually hold a
 * 12-bit camera's values, which sharp's full-range conversion (divide by 256) would crush to 0..16:
 * an image whose maximum fits 12 bits is read as 12-bit (x * 255 / 4095), anything brighter as full
 * 16-bit. A fixed factor, not a per-image stretch, so that a dim defocused image stays dim instead of
 * having its noise amplified into false detail.
 */
async function decodeGrey16(input: string | Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(input, { limitInputPixels: MAX_DECODED_PIXELS }).removeAlpha().toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  const values = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  let max = 0;
  for (const v of values) if (v > max) max = v;
  const scale = 255 / (max <= 4095 ? 4095 : 65535);
  const pixels = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) pixels[3 * i] = pixels[3 * i + 1] = pixels[3 * i + 2] = Math.min(255, Math.round(values[i]! * scale));
  return { pixels, width: info.width, height: info.height, rowStride: info.width * 3 };
}

/**
 * Greyscale becomes three equal channels, alpha is dropped, 16-bit RGB is scaled to 8-bit (16-bit
 * grey: see decodeGrey16); for multi-page files the first page is read.
 */
export async function decodeImage(input: string | Uint8Array, label = typeof input === 'string' ? input : 'image buffer'): Promise<RgbImage> {
  let meta: sharp.Metadata;
  try {
    // The header only; the size is checked below with a message that says what to do.
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw unreadable(err, label);
  }
  if (!meta.width || !meta.height) throw new InputError(`${label}: not a readable image (no size in its header)`);
  if (meta.width * meta.height > MAX_DECODED_PIXELS) {
    throw new InputError(`${label}: ${meta.width}x${meta.height} pixels is more than a plain image may have (${MAX_DECODED_PIXELS}); store it as a tiled pyramidal TIFF`);
  }
  // CMYK is ink coverage, not light: read as RGB it would be scored as a different image.
  if (meta.space === 'cmyk') throw new InputError(`${label}: CMYK image (a print colour space): convert it to RGB first`);
  try {
    if ((meta.depth === 'ushort' || meta.depth === 'short') && (meta.channels === 1 || (meta.channels === 2 && meta.hasAlpha))) return await decodeGrey16(input);
    const { data, info } = await sharp(input, { limitInputPixels: MAX_DECODED_PIXELS })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, rowStride: info.width * 3 };
  } catch (err) {
    throw unreadable(err, label);
  }
}

function unreadable(err: unknown, label: string): InputError {
  const message = (err as Error).message;
  if (/ENOENT|no such file|Input file is missing/i.test(message)) return new InputError(`${label}: file not found`, { cause: err });
  return new InputError(`${label}: not a readable image (${message})`, { cause: err });
}
