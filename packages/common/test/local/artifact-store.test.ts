/** The local artifact store: keys as files, refusal of escaping keys, atomic writes, listing. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactKeyError, ArtifactNotFoundError, LocalArtifactStore } from '../../src/local/index.js';
import { tempHome } from './helpers.js';

const dir = tempHome('artifacts');
const store = new LocalArtifactStore(dir.home);
afterAll(() => dir.remove());

describe('LocalArtifactStore', () => {
  it('put / exists / get bytes and files', async () => {
    expect(await store.exists('jobs/a/x.txt')).toBe(false);
    await store.putBytes('jobs/a/x.txt', 'hello');
    expect(await store.exists('jobs/a/x.txt')).toBe(true);
    expect(await store.exists('jobs/a')).toBe(false); // a folder is not a key
    expect((await store.getBytes('jobs/a/x.txt')).toString()).toBe('hello');
    await store.putBytes('jobs/a/x.txt', new Uint8Array([1, 2, 3])); // overwrite
    expect([...(await store.getBytes('jobs/a/x.txt'))]).toEqual([1, 2, 3]);

    const src = join(dir.home, 'src.bin');
    writeFileSync(src, Buffer.alloc(300_000, 7));
    await store.putFile('bundles/abc.tar.gz', src);
    const out = join(dir.home, 'out', 'deep', 'copy.bin');
    await store.getFile('bundles/abc.tar.gz', out);
    expect(readFileSync(out).equals(readFileSync(src))).toBe(true);
    expect(existsSync(join(dir.home, 'artifacts', 'bundles', 'abc.tar.gz'))).toBe(true);
  });

  it('missing keys are typed errors', async () => {
    await expect(store.getBytes('no/such')).rejects.toBeInstanceOf(ArtifactNotFoundError);
    await expect(store.getFile('no/such', join(dir.home, 'x'))).rejects.toBeInstanceOf(ArtifactNotFoundError);
    await expect(store.getBytes('jobs')).rejects.toBeInstanceOf(ArtifactNotFoundError); // a folder
  });

  it.each([
    ['..'],
    ['../x'],
    ['a/../../x'],
    ['a/./b'],
    ['./a'],
    ['/etc/passwd'],
    ['a\\b'],
    ['..\\x'],
    ['a//b'],
    ['a/'],
    [''],
    ['C:/x'],
    ['a\0b'],
  ])('refuses the key %j', async (key) => {
    await expect(store.putBytes(key, 'x')).rejects.toBeInstanceOf(ArtifactKeyError);
    await expect(store.getBytes(key)).rejects.toBeInstanceOf(ArtifactKeyError);
    await expect(store.exists(key)).rejects.toBeInstanceOf(ArtifactKeyError);
  });

  it('refuses a key over 1024 bytes of UTF-8, as S3 does, though it has fewer than 1024 characters', async () => {
    const key = Array.from({ length: 6 }, () => 'é'.repeat(90)).join('/'); // 545 characters, 1085 bytes
    await expect(store.putBytes(key, 'x')).rejects.toBeInstanceOf(ArtifactKeyError);
    await store.putBytes(key.slice(0, 500), 'x');
  });

  it('refuses escaping prefixes for list and deletePrefix', async () => {
    for (const p of ['../', '/', '..', 'a//', 'a\\']) {
      await expect(store.list(p)).rejects.toBeInstanceOf(ArtifactKeyError);
      await expect(store.deletePrefix(p)).rejects.toBeInstanceOf(ArtifactKeyError);
    }
    expect(existsSync(dir.home)).toBe(true);
  });

  it('list by prefix is sorted and is a plain string prefix (as in S3)', async () => {
    const keys = ['p/b/2', 'p/a/1', 'p/ab', 'p/a/0', 'q/1', 'p/b/10'];
    for (const k of keys) await store.putBytes(k, k);
    expect(await store.list('p/')).toEqual(['p/a/0', 'p/a/1', 'p/ab', 'p/b/10', 'p/b/2']);
    expect(await store.list('p/a')).toEqual(['p/a/0', 'p/a/1', 'p/ab']);
    expect(await store.list('p/a/')).toEqual(['p/a/0', 'p/a/1']);
    expect(await store.list('p/b/1')).toEqual(['p/b/10']);
    expect(await store.list('nothing/')).toEqual([]);
    expect(await store.list('')).toEqual(expect.arrayContaining(['q/1', 'p/ab']));
  });

  it('deletePrefix removes the keys under it and nothing else', async () => {
    for (const k of ['d/x/1', 'd/x/2', 'd/xy', 'd/z']) await store.putBytes(k, k);
    await store.deletePrefix('d/x/');
    expect(await store.list('d/')).toEqual(['d/xy', 'd/z']);
    await store.deletePrefix('d/x');
    expect(await store.list('d/')).toEqual(['d/z']);
    await store.deletePrefix('d/');
    expect(await store.list('d/')).toEqual([]);
    expect(existsSync(join(dir.home, 'artifacts', 'd'))).toBe(false);
    await store.deletePrefix('never/there/'); // missing is fine
  });

  it('writes are atomic: concurrent readers only ever see a whole file', async () => {
    const big = (c: number) => Buffer.alloc(2_000_000, c);
    await store.putBytes('atomic/file', big(1));
    let stop = false;
    const bad: string[] = [];
    const reader = (async () => {
      let reads = 0;
      while (!stop || reads < 5) {
        const b = await store.getBytes('atomic/file');
        reads++;
        if (b.length !== 2_000_000 || b[0] !== b[b.length - 1]) bad.push(`len ${b.length}`);
      }
      return reads;
    })();
    for (let i = 0; i < 20; i++) await store.putBytes('atomic/file', big(i % 2 ? 1 : 2));
    stop = true;
    const reads = await reader;
    expect(reads).toBeGreaterThan(0);
    expect(bad).toEqual([]);
    // No temporary files are left behind, and none show up in listings.
    expect(readdirSync(join(dir.home, 'tmp'))).toEqual([]);
    expect(await store.list('atomic/')).toEqual(['atomic/file']);
  });
});

describe('secrets in the local artifact store', () => {
  it('writes a key under secret/ readable by the owner only, in an owner-only folder, from the first byte', async () => {
    const { mkdtempSync, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { LocalArtifactStore } = await import('../../src/local/artifact-store.js');
    const home = mkdtempSync(join(tmpdir(), 'gq-secret-'));
    const store = new LocalArtifactStore(home);
    await store.putBytes('jobs/j1/secret/license', 'WLSACCESSID=abc');
    const file = store.pathOf('jobs/j1/secret/license');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
  });
});
