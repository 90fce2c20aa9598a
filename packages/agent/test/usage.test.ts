import { describe, expect, it } from 'vitest';
import { Usage } from '../src/usage.js';

describe('an instance\'s own accounting', () => {
  it('adds the time in each state to busy or idle, and notes ready and end once', () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const u = new Usage(() => t, { lifecycle: 'on-demand', pricePerHour: 0.085, priceSource: 'table', launchedAt: t - 40_000 });
    u.record('INSTALLING');
    t += 30_000;
    expect(u.record('READY').installedAt).toBe('2026-01-01T00:00:30.000Z');
    t += 10_000;
    u.record('BUSY');
    t += 100_000;
    u.record('BUSY'); // a heartbeat while busy
    t += 20_000;
    u.record('IDLE');
    t += 5_000;
    u.record('READY'); // not a second install
    t += 5_000;
    const f = u.record('STOPPED');
    t += 60_000;
    expect(u.record('STOPPED').endedAt).toBe(f.endedAt);
    expect(f).toEqual({
      launchedAt: '2025-12-31T23:59:20.000Z',
      bootedAt: '2026-01-01T00:00:00.000Z',
      installedAt: '2026-01-01T00:00:30.000Z',
      endedAt: '2026-01-01T00:02:50.000Z',
      busySeconds: 120,
      idleSeconds: 20,
      tasksRun: 0,
      taskSeconds: 0,
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
