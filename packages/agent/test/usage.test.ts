import { describe, expect, it } from 'vitest';
import { Usage } from '../src/usage.js';

describe('an instance\'s own accounting', () => {
  it('counts attempts as busy, the rest of the ready time as idle, and notes ready and end once', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const u = new Usage(() => t, { lifecycle: 'on-demand', pricePerHour: 0.085, priceSource: 'table', launchedAt: t - 40_000 });
    u.record('INSTALLING');
    t += 30_000;
    expect(u.record('READY').installedAt).toBe('2026-01-01T00:00:30.000Z');
    t += 10_000;
    let writes = 0;
    const first = u.startTask(async () => void writes++);
    t += 100_000;
    expect(u.record('BUSY')).toMatchObject({ busySeconds: 100, idleSeconds: 10, tasksRun: 0 }); // a heartbeat mid-attempt
    t += 20_000;
    await first();
    await first(); // once only
    const a = u.startTask();
    const b = u.startTask(); // two slots at once: their seconds add up
    t += 5_000;
    await a();
    await b();
    expect(writes).toBe(1);
    u.record('READY'); // not a second install
    t += 5_000;
    const f = u.record('STOPPED');
    t += 60_000;
    expect(u.record('STOPPED')).toEqual(f);
    expect(f).toEqual({
      launchedAt: '2025-12-31T23:59:20.000Z',
      bootedAt: '2026-01-01T00:00:00.000Z',
      installedAt: '2026-01-01T00:00:30.000Z',
      endedAt: '2026-01-01T00:02:50.000Z',
      busySeconds: 130,
      idleSeconds: 10,
      tasksRun: 3,
      taskSeconds: 130,
      lifecycle: 'on-demand',
      pricePerHour: 0.085,
      priceSource: 'table',
    });
  });
  it('is a local worker at price 0 by default, launched when it started', () => {
    const u = new Usage(() => 1000);
    expect(u.record('READY')).toMatchObject({ lifecycle: 'local', pricePerHour: 0, launchedAt: new Date(1000).toISOString() });
  });
  it('records no price it does not know', () => {
    expect(new Usage(() => 0, { lifecycle: 'spot' }).fields()).not.toHaveProperty('pricePerHour');
  });
});
