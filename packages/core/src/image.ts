/** Decodes plain images (PNG, JPEG, TIFF, ...) to RGB u8 with sharp. */
import sharp from 'sharp';
import { InputError } from './errors.js';

export interface RgbImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  /** Bytes between rows. */
  rowStride: number;
}

/**
 * Greyscale becomes three equal channels, alpha is dropped, 16-bit is scaled to 8-bit; for
 * multi-page files the first page is read.
 */
export async function decodeImage(input: string | Uint8Array, label = typeof input === 'string' ? input : 'image buffer'): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(input, { limitInputPixels: false })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, rowStride: info.width * 3 };
  } catch (err) {
    const message = (err as Error).message;
    if (/ENOENT|no such file|Input file is missing/i.test(message)) throw new InputError(`${label}: file not found`, { cause: err });
    throw new InputError(`${label}: not a readable image (${message})`, { cause: err });
  }
}
