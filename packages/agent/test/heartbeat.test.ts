/**
 * heartbeat.ts on the local status store and a fake clock: it renews the lease and the message's
 * visibility at a third of the lease (at least every 15 s), goes on through failed renewals, and
 * says once that the task must stop when it is cancelled or its lease is lost (then it stops
 * extending the message, which belongs to the new owner).
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type TaskQueue } from '@gq/common';
import { startHeartbeat, type Heartbeat, type HeartbeatStop } from '../src/heartbeat.js';
import { FakeClock } from './fake-clock.js';
import { wrap } from './in-process.js';
import { makeLocalJob, type Fixture } from './local-job.js';

const made: Fixture[] = [];
const beats: Heartbeat[] = [];
afterEach(async () => {
  for (const b of beats.splice(0)) await b.stop();
  for (const f of made.splice(0)) {
    await f.backend.close();
    rmSync(f.home, { recursive: true, force: true });
  }
});

/** Task 1 claimed by w-1 with a lease of `leaseSeconds`, and a heartbeat for it. */
async function beating(label: string, leaseSeconds: number) {
  const clock = new FakeClock();
  const f = await makeLocalJob(label, ['true'], {}, clock.now);
  made.push(f);
  expect((await f.backend.status.claim(f.job, 1, 'w-1', leaseSeconds * 1000)).kind).toBe('claimed');
  const extended: number[] = [];
  const queue = { extend: async (_receipt: string, seconds: number) => void extended.push(seconds) } as unknown as TaskQueue;
  const s = { calls: 0, down: false };
  const status = wrap(f.backend.status, {
    async heartbeat(...a) {
      s.calls++;
      if (s.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return f.backend.status.heartbeat(...a);
    },
  });
  const stops: HeartbeatStop[] = [];
  const hb = startHeartbeat({
    status,
    queue,
    job: f.job,
    task: 1,
    instance: 'w-1',
    receipt: 'r-1',
    leaseSeconds,
    log: createLogger({ level: 'silent' }),
    onStop: (r) => stops.push(r),
    clock,
  });
  beats.push(hb);
  const leaseUntil = async () => (await f.backend.status.getTask(f.job, 1))!.leaseUntil;
  return { f, clock, hb, s, extended, stops, leaseUntil };
}

describe('heartbeat (fake clock)', () => {
  it('renews the lease and the message every third of the lease, through failures, until the lease is lost', async () => {
    const { f, clock, hb, s, extended, stops, leaseUntil } = await beating('hb-lost', 30);
    const t0 = clock.now();
    await clock.advance(9_999);
    expect(s.calls).toBe(0);
    await clock.advance(1);
    expect(await leaseUntil()).toBe(t0 + 40_000);
    expect(hb.lastRenewedAt()).toBe(t0 + 10_000);
    expect(extended).toEqual([30]);

    // Renewals that fail (the network) stop nothing; the next one that lands renews again.
    s.down = true;
    await clock.advance(10_000);
    expect([s.calls, hb.lastRenewedAt(), stops]).toEqual([2, t0 + 10_000, []]);
    s.down = false;
    await clock.advance(10_000);
    expect([hb.lastRenewedAt(), await leaseUntil(), extended]).toEqual([t0 + 30_000, t0 + 60_000, [30, 30]]);

    // Cut off past the lease: another worker takes the task over. The next beat says so, once.
    s.down = true;
    await clock.advance(40_000);
    expect((await f.backend.status.claim(f.job, 1, 'w-2', 30_000)).kind).toBe('claimed');
    s.down = false;
    await clock.advance(10_000);
    expect(stops).toEqual(['lost']);
    await clock.advance(30_000);
    expect(stops).toEqual(['lost']);
    expect(extended).toEqual([30, 30]); // the message is the new owner's now
    expect(hb.lastRenewedAt()).toBe(t0 + 30_000);
    expect((await f.backend.status.getTask(f.job, 1))!.instance).toBe('w-2');

    const calls = s.calls;
    await hb.stop();
    await clock.advance(60_000);
    expect(s.calls).toBe(calls); // stopped: no more beats
  });

  it('says cancel once when the job is cancelled, and keeps the lease meanwhile', async () => {
    const { f, clock, stops, extended, leaseUntil } = await beating('hb-cancel', 30);
    await clock.advance(10_000);
    await f.backend.status.cancel(f.job);
    await clock.advance(20_000);
    expect(stops).toEqual(['cancel']);
    expect(await leaseUntil()).toBe(clock.now() + 30_000); // the task is still ours until it stops
    expect(extended).toEqual([30, 30, 30]);
  });

  it('beats at least every 15 s, whatever the lease', async () => {
    const { clock, s } = await beating('hb-long', 3600);
    await clock.advance(15_000);
    expect(s.calls).toBe(1);
    await clock.advance(45_000);
    expect(s.calls).toBe(4);
  });
});
