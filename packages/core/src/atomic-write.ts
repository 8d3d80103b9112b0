/** Writes a file atomically (temp file beside it, then rename), so readers never see half a file. */
import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  // Random, not only the pid: queue workers on several machines (same pids) may share the folder.
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await writeFile(temp, data);
  await rename(temp, file);
}
