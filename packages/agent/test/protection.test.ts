/** protection.ts: the worker's scale-in protection changes only once AWS accepted it. */
import { describe, expect, it } from 'vitest';
import { ScaleInProtection } from '../src/protection.js';

describe('ScaleInProtection', () => {
  it('records a change only after the fleet accepted it, and asks again after a refusal', async () => {
    const asked: boolean[] = [];
    let refuse = 1;
    const errors: unknown[] = [];
    const p = new ScaleInProtection(
      async (on) => {
        asked.push(on);
        if (refuse-- > 0) throw Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
      },
      (err) => errors.push(err),
    );
    expect(await p.want(true)).toBe(false);
    expect(p.isOn).toBe(false); // refused: still unprotected, as AWS holds it
    expect(errors).toHaveLength(1);
    expect(await p.want(true)).toBe(true); // asked again, not skipped
    expect(p.isOn).toBe(true);
    expect(await p.want(true)).toBe(true); // no call: already so
    expect(asked).toEqual([true, true]);
    expect(await p.want(false)).toBe(true);
    expect(p.isOn).toBe(false);
    expect(asked).toEqual([true, true, false]);
  });

  it('a refused release keeps it protected (and it is released again later)', async () => {
    let fail = false;
    const p = new ScaleInProtection(async () => {
      if (fail) throw new Error('network');
    }, () => {});
    await p.want(true);
    fail = true;
    expect(await p.want(false)).toBe(false);
    expect(p.isOn).toBe(true);
    fail = false;
    expect(await p.want(false)).toBe(true);
    expect(p.isOn).toBe(false);
  });
});
