/**
 * What a slide report is keyed by, so a nightly rerun reuses a report only when it would come out
 * the same: the slide's content, the model file's bytes and the options that decide scores and
 * verdict. A changed slide, model or option gives another key, and the slide is scanned again.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { fileKind } from '../regular-file.js';
import type { ResolvedScanOptions } from '../scan/scan-slide.js';

/** Bytes hashed at each end of a slide file (whole slides are gigabytes; their ends differ per scan). */
const FINGERPRINT_BYTES = 4 * 1024 * 1024;

/**
 * The content fingerprint of a file: its size and the SHA-256 of its first and last 4 MiB (all of
 * it when smaller). A slide's header, tile offsets and last tiles sit there, so a rescanned or
 * replaced slide changes it; reading whole multi-gigabyte slides each night would cost more than
 * the scan. Multi-file formats (MRXS) are fingerprinted by their index file.
 */
export async function slideFingerprint(file: string): Promise<string> {
  // Non-blocking, and checked on the open handle: a FIFO swapped in after the caller's check must
  // not hang the run.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new InputError(`${file}: is ${fileKind(info)}, not a slide file`);
    const { size } = info;
    const hash = createHash('sha256').update(`size ${size}\n`);
    const read = async (position: number, length: number) => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      hash.update(buffer.subarray(0, bytesRead));
    };
    if (size <= 2 * FINGERPRINT_BYTES) await read(0, size);
    else {
      await read(0, FINGERPRINT_BYTES);
      await read(size - FINGERPRINT_BYTES, FINGERPRINT_BYTES);
    }
    return `${size}:${hash.digest('hex')}`;
  } finally {
    await handle.close();
  }
}

/** The report key: slide fingerprint + model SHA-256 + resolved options, hashed (hex, 16 digits). */
export function reportKey(fingerprint: string, modelSha256: string, options: ResolvedScanOptions): string {
  const o = options;
  const canonical = JSON.stringify([fingerprint, modelSha256, o.patchSize, o.stride, o.mpp, o.threshold, o.minTissue, o.maxOutOfFocus]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
