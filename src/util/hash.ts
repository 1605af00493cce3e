/** sha256 of files, streamed (a shard of several GB is never held in memory). */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

function feed(hash: Hash, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path)
      .on('data', (d) => hash.update(d))
      .on('end', () => resolve())
      .on('error', reject);
  });
}

/** The hex sha256 of the files' contents, one after the other (of one file: its own sha256). */
export async function sha256Files(...paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const path of paths) await feed(hash, path);
  return hash.digest('hex');
}
