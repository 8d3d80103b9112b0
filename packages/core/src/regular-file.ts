/**
 * Reading inputs that a user or a queued job names: only regular files, bounded in size.
 *
 * The file is opened non-blocking and checked on the open handle (fstat), not by name first, so a
 * FIFO never blocks the open, a device or folder is refused, and the file checked is the file read
 * (no swap between check and read).
 */
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { InputError } from './errors.js';

/** What a non-regular path is, in words for one error line. */
export function fileKind(info: { isFile(): boolean; isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (info.isFile()) return 'a regular file';
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function describeError(file: string, err: unknown): InputError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'ELOOP' ? 'too many levels of symbolic links' : `cannot read (${code ?? String(err)})`;
  return new InputError(`${file}: ${why}`, { cause: err });
}

/** Throws an InputError unless `file` (symlinks followed) is a regular file; returns its size. */
export async function requireRegularFile(file: string, what = 'input'): Promise<number> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw describeError(file, err);
  }
  if (!info.isFile()) throw new InputError(`${file}: ${what} is ${fileKind(info)}, not a regular file`);
  return info.size;
}

/** Reads a regular file of at most `maxBytes`; anything else is an InputError naming the file. */
export async function readRegularFile(file: string, maxBytes: number, what = 'input'): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw describeError(file, err);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new InputError(`${file}: ${what} is ${fileKind(info)}, not a regular file`);
    if (info.size > maxBytes) throw new InputError(`${file}: ${what} is ${info.size} bytes, more than the ${maxBytes} fqa reads`);
    const bytes = Buffer.alloc(info.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // A file that shrank while read is truncated input; one that grew is read to its size at open.
    return filled === bytes.length ? bytes : bytes.subarray(0, filled);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw describeError(file, err);
  } finally {
    await handle.close();
  }
}
