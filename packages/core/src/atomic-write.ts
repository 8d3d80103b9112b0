/** Writes a file atomically (temp file beside it, then rename), so readers never see half a file. */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** `data` may be chunks, for files larger than one string can be (V8 strings stop at ~2^29 characters). */
export async function writeAtomic(file: string, data: string | Uint8Array | Iterable<string>): Promise<void> {
  // Random, not only the pid: queue workers on several machines (same pids) may share the folder.
  // Not named after the file: a file name near NAME_MAX (255 bytes) would make the temp name too long.
  const temp = path.join(path.dirname(file), `.fqa-tmp.${process.pid}.${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'w');
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) {
      await handle.writeFile(data);
    } else {
      // Chunks are gathered into ~1 MiB writes.
      let pending: string[] = [];
      let size = 0;
      for (const chunk of data) {
        pending.push(chunk);
        size += chunk.length;
        if (size >= 1 << 20) {
          await handle.write(pending.join(''));
          pending = [];
          size = 0;
        }
      }
      if (pending.length) await handle.write(pending.join(''));
    }
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(temp, file);
}
