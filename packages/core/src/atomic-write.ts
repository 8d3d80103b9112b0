/** Writes a file atomically (temp file beside it, then rename), so readers never see half a file. */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(temp, data);
  await rename(temp, file);
}
