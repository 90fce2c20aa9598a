/**
 * Behaviour every ArtifactStore must have (an S3 bucket's, with gq's key rules). Run by
 * test/local/contract.test.ts on a folder and by test/aws/contract.test.ts on moto's S3. Each
 * test works under its own `jobs/<unique>/` prefix, so the suites can share one store.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../../src/ports.js';
import { ArtifactKeyError, ArtifactNotFoundError } from '../../src/port-errors.js';
import { uniqueJob, type ContractOptions } from './util.js';

export interface ArtifactFixture {
  artifacts: ArtifactStore;
  cleanup(): Promise<void>;
}

/** Keys that would escape a folder or that S3 and the local store must both refuse. */
const BAD_KEYS = ['', '../escape', 'a/../../b', '/abs', 'a//b', 'a/./b', 'a\\b', 'C:/x', 'nul\0byte', `long/${'k'.repeat(1100)}`];

export function artifactContract(name: string, make: () => Promise<ArtifactFixture>, opts: ContractOptions = {}): void {
  (opts.concurrent ? describe.concurrent : describe)(`ArtifactStore contract: ${name}`, () => {
    let fx: ArtifactFixture;
    let store: ArtifactStore;
    let scratch: string;
    const prefixes: string[] = [];

    beforeAll(async () => {
      fx = await make();
      store = fx.artifacts;
      scratch = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'gq-artifact-contract-'));
    });
    afterAll(async () => {
      for (const p of prefixes) await store.deletePrefix(p).catch(() => {});
      rmSync(scratch, { recursive: true, force: true });
      await fx.cleanup();
    });

    /** A fresh `jobs/<unique>/` prefix of this test. */
    function fresh(tag: string): string {
      const p = `jobs/${uniqueJob(tag)}/`;
      prefixes.push(p);
      return p;
    }

    it('putBytes / getBytes / exists, strings and bytes; a second put replaces the first', async () => {
      const p = fresh('bytes');
      expect(await store.exists(`${p}a.txt`)).toBe(false);
      await store.putBytes(`${p}a.txt`, 'héllo');
      await store.putBytes(`${p}b.bin`, new Uint8Array([0, 1, 2, 255]));
      expect(await store.exists(`${p}a.txt`)).toBe(true);
      expect((await store.getBytes(`${p}a.txt`)).toString('utf8')).toBe('héllo');
      expect([...(await store.getBytes(`${p}b.bin`))]).toEqual([0, 1, 2, 255]);
      await store.putBytes(`${p}a.txt`, 'again');
      expect((await store.getBytes(`${p}a.txt`)).toString()).toBe('again');
      await store.putBytes(`${p}empty`, '');
      expect((await store.getBytes(`${p}empty`)).length).toBe(0);
    });

    it('getTail: the last bytes, all of a shorter object, none of an empty one; a missing key or a folder is ArtifactNotFoundError', async () => {
      const p = fresh('tail');
      await store.putBytes(`${p}log`, 'line 1\nline 2\nline 3\n');
      expect((await store.getTail(`${p}log`, 7)).toString()).toBe('line 3\n');
      expect((await store.getTail(`${p}log`, 1000)).toString()).toBe('line 1\nline 2\nline 3\n');
      await store.putBytes(`${p}empty`, '');
      expect((await store.getTail(`${p}empty`, 10)).length).toBe(0);
      await expect(store.getTail(`${p}nope`, 10)).rejects.toBeInstanceOf(ArtifactNotFoundError);
      await store.putBytes(`${p}d/inner`, 'x');
      await expect(store.getTail(`${p}d`, 10)).rejects.toBeInstanceOf(ArtifactNotFoundError);
    });

    it('putFile / getFile: the folder of the target is made; a missing key is ArtifactNotFoundError and writes no file', async () => {
      const p = fresh('files');
      const src = join(scratch, `${p.replace(/\//g, '_')}src.txt`);
      writeFileSync(src, 'line 1\nline 2\n');
      await store.putFile(`${p}deep/down/f.txt`, src);
      const dest = join(scratch, p.replace(/\//g, '_'), 'x', 'y', 'f.txt');
      await store.getFile(`${p}deep/down/f.txt`, dest);
      expect(readFileSync(dest, 'utf8')).toBe('line 1\nline 2\n');

      const missing = join(scratch, 'never', 'written.txt');
      await expect(store.getFile(`${p}nope`, missing)).rejects.toBeInstanceOf(ArtifactNotFoundError);
      expect(existsSync(missing)).toBe(false);
      await expect(store.getBytes(`${p}nope`)).rejects.toBeInstanceOf(ArtifactNotFoundError);
    });

    it('a "folder" (the prefix of other keys) is no artifact: exists is false, reads are ArtifactNotFoundError', async () => {
      const p = fresh('folder');
      await store.putBytes(`${p}d/inner.txt`, 'x');
      expect(await store.exists(`${p}d`)).toBe(false);
      await expect(store.getBytes(`${p}d`)).rejects.toBeInstanceOf(ArtifactNotFoundError);
      await expect(store.getFile(`${p}d`, join(scratch, 'folder-read'))).rejects.toBeInstanceOf(ArtifactNotFoundError);
    });

    it('list is sorted and by plain string prefix (as S3 lists), never outside it', async () => {
      const p = fresh('list');
      for (const k of ['b/2', 'a/1', 'a/10/x', 'ab', 'b/1']) await store.putBytes(`${p}${k}`, k);
      expect(await store.list(p)).toEqual(['a/1', 'a/10/x', 'ab', 'b/1', 'b/2'].map((k) => p + k));
      expect(await store.list(`${p}a/1`)).toEqual([`${p}a/1`, `${p}a/10/x`]);
      expect(await store.list(`${p}a/`)).toEqual([`${p}a/1`, `${p}a/10/x`]);
      expect(await store.list(`${p}a`)).toEqual([`${p}a/1`, `${p}a/10/x`, `${p}ab`]);
      expect(await store.list(`${p}zzz/`)).toEqual([]);
    });

    it('deletePrefix removes exactly the keys that start with the prefix; nothing there is fine; "" is refused', async () => {
      const p = fresh('delete');
      for (const k of ['x/1', 'x/2/3', 'xy/1', 'y/1']) await store.putBytes(`${p}${k}`, k);
      await store.deletePrefix(`${p}x/`);
      expect(await store.list(p)).toEqual([`${p}xy/1`, `${p}y/1`]);
      await store.deletePrefix(`${p}x`); // a plain prefix: xy/1 too
      expect(await store.list(p)).toEqual([`${p}y/1`]);
      await store.deletePrefix(`${p}never/there/`);
      await expect(store.deletePrefix('')).rejects.toBeInstanceOf(ArtifactKeyError);
      expect(await store.list(p)).toEqual([`${p}y/1`]);
    });

    it('refuses keys that could escape or that S3 would not take, with ArtifactKeyError, and writes nothing', async () => {
      const p = fresh('bad');
      for (const key of BAD_KEYS) {
        await expect(store.putBytes(key, 'x'), key).rejects.toBeInstanceOf(ArtifactKeyError);
        await expect(store.getBytes(key), key).rejects.toBeInstanceOf(ArtifactKeyError);
        await expect(store.exists(key), key).rejects.toBeInstanceOf(ArtifactKeyError);
      }
      for (const prefix of ['../', '/abs/', 'a//', 'a\\b/']) {
        await expect(store.list(prefix), prefix).rejects.toBeInstanceOf(ArtifactKeyError);
        await expect(store.deletePrefix(prefix), prefix).rejects.toBeInstanceOf(ArtifactKeyError);
      }
      expect(await store.list(p)).toEqual([]);
    });
  });
}
