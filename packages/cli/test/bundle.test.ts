import { mkdirSync, mkdtempSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { makeBundle } from '../src/bundle.js';

function folder(): string {
  const d = mkdtempSync(join(tmpdir(), 'gq-code-'));
  mkdirSync(join(d, 'src'));
  writeFileSync(join(d, 'src', 'run.sh'), 'echo hi\n');
  writeFileSync(join(d, 'data.txt'), 'x');
  mkdirSync(join(d, '.git'));
  writeFileSync(join(d, '.git', 'HEAD'), 'ref');
  return d;
}

describe('code bundle', () => {
  it('gives the same hash for the same content, whatever the times', async () => {
    const d = folder();
    const a = await makeBundle(d);
    utimesSync(join(d, 'data.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const b = await makeBundle(d);
    expect(b.sha256).toBe(a.sha256);
    writeFileSync(join(d, 'data.txt'), 'y');
    const c = await makeBundle(d);
    expect(c.sha256).not.toBe(a.sha256);
    for (const x of [a, b, c]) x.cleanup();
  });

  it('leaves out .git and places --input folders at their remote path', async () => {
    const d = folder();
    const extra = mkdtempSync(join(tmpdir(), 'gq-extra-'));
    writeFileSync(join(extra, 'big.dat'), '1');
    const b = await makeBundle(d, [{ local: extra, remote: 'inputs/data' }]);
    const entries: string[] = [];
    await tar.t({ file: b.file, onReadEntry: (e) => entries.push(e.path) });
    expect(entries.sort()).toEqual(['data.txt', 'inputs/data/big.dat', 'src/run.sh']);
    b.cleanup();
  });
});
