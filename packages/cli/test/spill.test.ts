import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forEachLimited, Spill } from '../src/results/spill.js';

describe('Spill', () => {
  it('gives back every value in the order added, as often as asked, one JSON line each', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gq-spill-')), 'x.gq-rows');
    const s = new Spill<{ n: number; t: string }>(file);
    for (let n = 0; n < 5000; n++) await s.add({ n, t: `a,"b"\n${n}` });
    for (let round = 0; round < 2; round++) {
      let n = 0;
      for await (const v of s.values()) expect(v).toEqual({ n: n++, t: `a,"b"\n${v.n}` });
      expect(n).toBe(5000);
    }
    expect(s.count).toBe(5000);
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(5000);
  });

  it('refuses a file or a link that is already there (it is opened wx), at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gq-spill-'));
    writeFileSync(join(dir, 'x'), 'before');
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'link'));
    expect(() => new Spill(join(dir, 'x'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => new Spill(join(dir, 'link'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('before');
    expect(existsSync(join(dir, 'elsewhere'))).toBe(false);
  });
});

describe('forEachLimited', () => {
  async function* numbers(n: number, taken: number[]): AsyncGenerator<number> {
    for (let i = 0; i < n; i++) {
      taken.push(i);
      yield i;
    }
  }

  it('runs every item, never more than the limit at once', async () => {
    let now = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachLimited(numbers(50, []), 4, async (i) => {
      most = Math.max(most, ++now);
      await new Promise((r) => setTimeout(r, i % 3));
      seen.push(i);
      now--;
    });
    expect(most).toBe(4);
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
  });

  it('stops taking items after an error, and throws it once those in hand are done', async () => {
    const taken: number[] = [];
    let running = 0;
    const err = await forEachLimited(numbers(1000, taken), 3, async (i) => {
      running++;
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (i === 4) throw new Error('boom');
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe('boom');
    expect(running).toBe(0);
    expect(taken.length).toBeLessThan(10);
  });
});
