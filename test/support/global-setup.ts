/**
 * Suite-wide set-up: a private GQ_HOME root for every test run. Moto is started by the tests that
 * need it (test/support/moto.ts), once per test file.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'gq-test-'));
  // Tasks of the emulated instances run as another user (gq-task): they pass through, no more.
  chmodSync(root, 0o711);
  process.env.GQ_TEST_ROOT = root;
  return () => {
    if (!process.env.GQ_KEEP_TEST_ROOT) rmSync(root, { recursive: true, force: true });
  };
}
