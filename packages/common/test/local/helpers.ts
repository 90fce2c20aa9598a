/** Test helpers for the local backend. */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh folder under GQ_TEST_ROOT (set by the global set-up) or the system temp folder. */
export function tempHome(tag: string): { home: string; remove(): void } {
  const root = process.env.GQ_TEST_ROOT ?? tmpdir();
  mkdirSync(root, { recursive: true });
  const home = mkdtempSync(join(root, `gq-local-${tag}-`));
  return { home, remove: () => rmSync(home, { recursive: true, force: true }) };
}
