/**
 * ArtifactStore over the folder `<home>/artifacts/`: a key is a relative "/"-separated path.
 * Keys that could escape the folder are refused. Writes go to a temporary file under
 * `<home>/tmp/` (same file system) and are renamed into place, so a reader sees the old file or
 * the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ArtifactStore } from '../ports.js';
import { checkDeletePrefix, checkKey } from '../artifact-keys.js';
import { ArtifactNotFoundError } from '../port-errors.js';

/** getFile reads and writes a file of at most this many bytes whole. */
const SMALL_FILE_BYTES = 1 << 20;

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** A read of `key` found no file: nothing there, or a folder (a prefix of other keys, no object on S3). */
const noFile = (e: unknown): boolean => isNotFound(e) || (e as NodeJS.ErrnoException).code === 'EISDIR';

export class LocalArtifactStore implements ArtifactStore {
  readonly root: string;
  private readonly tmp: string;

  constructor(home: string) {
    this.root = join(home, 'artifacts');
    this.tmp = join(home, 'tmp');
  }

  /** The file that holds `key`. */
  pathOf(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key))).isFile();
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async putFile(key: string, file: string): Promise<void> {
    const target = this.pathOf(key);
    await this.atomically(target, (tmp) => copyFile(file, tmp));
  }

  async putBytes(key: string, body: Uint8Array | string): Promise<void> {
    const target = this.pathOf(key);
    // Secrets (a job's licence, under jobs/<job>/secret/) are the owner's only from the first byte.
    const secret = key.split('/').includes('secret');
    await this.atomically(target, (tmp) => writeFile(tmp, body, secret ? { mode: 0o600 } : {}), secret ? 0o700 : undefined);
  }

  async getFile(key: string, file: string): Promise<void> {
    const source = this.pathOf(key);
    await mkdir(dirname(file), { recursive: true });
    // Copy through a temporary neighbour of `file`, so that `file` too appears whole.
    const tmp = `${file}.gq-tmp-${randomBytes(6).toString('hex')}`;
    try {
      // A small file in one read and one write: a stream pair allocates 64 KiB buffers (garbage)
      // per file, which dominated fetching 100,000 small result files. Written, not copied, so
      // it gets the usual new-file mode rather than the stored copy's.
      if ((await stat(source)).size <= SMALL_FILE_BYTES) await writeFile(tmp, await readFile(source));
      else await pipeline(createReadStream(source), createWriteStream(tmp));
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      if (noFile(e) && !(await this.exists(key))) throw new ArtifactNotFoundError(key);
      throw e;
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key));
    } catch (e) {
      if (noFile(e)) throw new ArtifactNotFoundError(key);
      throw e;
    }
  }

  async getTail(key: string, maxBytes: number): Promise<Buffer> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.pathOf(key), 'r');
      const size = (await fh.stat()).size;
      const n = Math.min(size, Math.max(1, Math.floor(maxBytes)));
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, size - n);
      return buf.subarray(0, bytesRead);
    } catch (e) {
      if (noFile(e)) throw new ArtifactNotFoundError(key);
      throw e;
    } finally {
      await fh?.close();
    }
  }

  async list(prefix: string): Promise<string[]> {
    checkKey(prefix, { prefix: true });
    // Walk the deepest folder the prefix names, then filter by plain string prefix (as S3 does).
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    const out: string[] = [];
    await this.walk(base, out);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkDeletePrefix(prefix);
    if (prefix.endsWith('/')) {
      // A whole folder.
      const dir = join(this.root, ...prefix.slice(0, -1).split('/'));
      await rm(dir, { recursive: true, force: true });
      await this.prune(dirname(dir));
      return;
    }
    for (const key of await this.list(prefix)) {
      const file = this.pathOf(key);
      await unlink(file).catch((e) => {
        if (!isNotFound(e)) throw e;
      });
      await this.prune(dirname(file));
    }
  }

  private async walk(rel: string, out: string[]): Promise<void> {
    const dir = rel === '' ? this.root : join(this.root, ...rel.split('/'));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    for (const ent of entries) {
      const key = rel === '' ? ent.name : `${rel}/${ent.name}`;
      if (ent.isDirectory()) await this.walk(key, out);
      else if (ent.isFile()) out.push(key);
    }
  }

  /** Remove empty folders from `dir` up to (not including) the root. */
  private async prune(dir: string): Promise<void> {
    let d = dir;
    while (d.startsWith(this.root + sep)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty, or gone
      }
      d = dirname(d);
    }
  }

  private async atomically(target: string, write: (tmp: string) => Promise<void>, dirMode?: number): Promise<void> {
    await mkdir(this.tmp, { recursive: true });
    const tmp = join(this.tmp, `${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await write(tmp);
      await mkdir(dirname(target), { recursive: true, ...(dirMode ? { mode: dirMode } : {}) });
      if (dirMode) await chmod(dirname(target), dirMode);
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }
}
