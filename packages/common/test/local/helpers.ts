/** Test helpers for the local backend. */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openDb, type Db } from '../../src/local/index.js';

/** A fresh folder under GQ_TEST_ROOT (set by the global set-up) or the system temp folder. */
export function tempHome(tag: string): { home: string; remove(): void } {
  const root = process.env.GQ_TEST_ROOT ?? tmpdir();
  mkdirSync(root, { recursive: true });
  const home = mkdtempSync(join(root, `gq-local-${tag}-`));
  return { home, remove: () => rmSync(home, { recursive: true, force: true }) };
}

/**
 * A test file's local store folder: `connect()` opens a connection to it (all closed, and the
 * folder removed, after the file's tests), `job(tag)` a job name no other test of the file uses.
 */
export function testDb(tag: string, prefix: string): { dir: { home: string; remove(): void }; connect(): Db; job(tag: string): string } {
  const dir = tempHome(tag);
  const dbs: Db[] = [];
  afterAll(() => {
    for (const db of dbs) if (db.open) db.close();
    dir.remove();
  });
  let n = 0;
  return {
    dir,
    connect() {
      const db = openDb(dir.home);
      dbs.push(db);
      return db;
    },
    job: (t: string) => `${prefix}-${t}-${++n}`,
  };
}
