/**
 * The agent's cost cap (cost-cap.ts) on a fake store that counts its requests: a cap added or
 * raised after the worker started is read; the first worker that finds the cap reached records
 * `capStop` once, and the others stop on their read of the job alone; a fleet of 500 workers
 * counts the spend (a Query of every instance record) about once per CHECK_MS in all, not once
 * per worker.
 */
import { describe, expect, it } from 'vitest';
import { emptyCounts, type CapStop, type InstanceRecord, type JobRecord } from '@gq/common';
import { CHECK_MS, CostCap, countPeriodMs, MAX_COUNT_MS, NO_CAP_CHECK_MS, type CapStore } from '../src/cost-cap.js';

const T0 = Date.parse('2026-01-01T12:00:00Z');
const silent = { warn: () => undefined } as never;

/** A job and its instance records: `n` busy instances at $3.60/h, launched at T0 (a cent a second together per 10). */
function fakeStore(n: number, maxCost?: number) {
  const calls = { getJob: 0, listInstances: 0, markCapReached: 0 };
  const job: JobRecord = {
    name: 'j',
    instanceTypes: { 'c5.large': n },
    counts: { ...emptyCounts(), running: n, queued: 10 },
    cancelRequested: false,
    updatedAt: new Date(T0).toISOString(),
    ...(maxCost !== undefined ? { maxCost } : {}),
  } as JobRecord;
  const instances: InstanceRecord[] = Array.from({ length: n }, (_, i) => ({
    job: 'j',
    instance: `i-${i}`,
    instanceType: 'c5.large',
    state: 'BUSY',
    heartbeatAt: new Date(T0).toISOString(),
    launchedAt: new Date(T0).toISOString(),
    pricePerHour: 3.6,
    lifecycle: 'on-demand',
  }));
  const store: CapStore = {
    getJob: async () => (calls.getJob++, structuredClone(job)),
    listInstances: async () => (calls.listInstances++, instances),
    markCapReached: async (_name: string, stop: CapStop) => {
      calls.markCapReached++;
      if (job.capStop || job.maxCost !== stop.maxCost) return false;
      job.capStop = stop;
      return true;
    },
  };
  return { calls, job, store };
}

/** Seeded randomness (deterministic tests): mulberry32. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('agent cost cap', () => {
  it('reads a cap added after the worker started (the job had none), and one raised later', async () => {
    const { calls, job, store } = fakeStore(1);
    let now = T0 + 100_000; // one instance for 100 s at $3.60/h: $0.10 spent
    const cap = new CostCap(store, 'j', 'i-0', () => now, silent, () => 0);
    expect(await cap.reached()).toBe(false);
    expect(calls).toEqual({ getJob: 1, listInstances: 0, markCapReached: 0 }); // no cap: the job item only
    job.maxCost = 100; // gq resume --max-cost 100
    now += NO_CAP_CHECK_MS - 1; // a job without a cap is read less often
    expect(await cap.reached()).toBe(false);
    expect(calls.getJob).toBe(1);
    now += 1;
    expect(await cap.reached()).toBe(false);
    expect(calls).toEqual({ getJob: 2, listInstances: 1, markCapReached: 0 });
    job.maxCost = 0.1; // lowered under the spend (a cap is read anew every time)
    now += CHECK_MS;
    expect(await cap.reached()).toBe(true);
    expect(job.capStop).toMatchObject({ maxCost: 0.1, by: 'i-0' });
    expect(job.capStop!.spend).toBeGreaterThanOrEqual(0.1);
  });

  it('at most one read of the job per CHECK_MS, and at most one count and one write per check', async () => {
    const { calls, store } = fakeStore(1, 100);
    let now = T0;
    const cap = new CostCap(store, 'j', 'i-0', () => now, silent, () => 0);
    for (let i = 0; i < 10; i++) {
      await cap.reached();
      now += 1_000;
    }
    // 10 s: checks at 0, 3, 6, 9 s; one instance, so each counts.
    expect(calls).toEqual({ getJob: 4, listInstances: 4, markCapReached: 0 });
  });

  it('the first worker that finds the cap reached records capStop once; the others stop on the job item alone', async () => {
    const { calls, job, store } = fakeStore(2, 0.01);
    const now = T0 + 60_000;
    const a = new CostCap(store, 'j', 'i-0', () => now, silent, () => 0);
    expect(await a.reached()).toBe(true);
    expect(calls).toEqual({ getJob: 1, listInstances: 1, markCapReached: 1 });
    expect(job.capStop).toMatchObject({ maxCost: 0.01, by: 'i-0' });
    const b = new CostCap(store, 'j', 'i-1', () => now, silent, () => 0.99);
    expect(await b.reached()).toBe(true);
    expect(calls).toEqual({ getJob: 2, listInstances: 1, markCapReached: 1 });
    // Stopped stays stopped for the worker (it leaves): no more reads.
    expect(await b.reached()).toBe(true);
    expect(calls.getJob).toBe(2);
  });

  it('a raise between the count and the write wins: no stop recorded for the old cap', async () => {
    const { job, store } = fakeStore(1, 0.01);
    const raising: CapStore = { ...store, markCapReached: async (n, s) => ((job.maxCost = 50), store.markCapReached(n, s)) };
    const cap = new CostCap(raising, 'j', 'i-0', () => T0 + 60_000, silent, () => 0);
    expect(await cap.reached()).toBe(false);
    expect(job.capStop).toBeUndefined();
  });

  it('500 workers: the fleet counts about once per CHECK_MS, each worker reads only the job item in between', async () => {
    const n = 500;
    const { calls, store } = fakeStore(n, 1e9);
    let now = T0;
    const random = seeded(7);
    const caps = Array.from({ length: n }, (_, i) => new CostCap(store, 'j', `i-${i}`, () => now, silent, random));
    const seconds = 300;
    for (let s = 0; s < seconds; s++) {
      for (const c of caps) await c.reached();
      now += 1_000;
    }
    const checks = n * Math.ceil(seconds / (CHECK_MS / 1000));
    expect(calls.getJob).toBe(checks); // one read of the job item a check
    // One count per CHECK_MS for the fleet: 100 in 300 s (random moments: within a third).
    expect(calls.listInstances).toBeGreaterThan(65);
    expect(calls.listInstances).toBeLessThan(135);
  });

  it('a fleet that shrank counts more often at once (a planned count far off is planned anew)', async () => {
    const { calls, job, store } = fakeStore(500, 1e9);
    let now = T0;
    const cap = new CostCap(store, 'j', 'i-0', () => now, silent, () => 0.99);
    await cap.reached(); // planned ~1485 s away (500 busy instances)
    expect(calls.listInstances).toBe(0);
    job.counts.running = 1;
    for (let s = 0; s < 2; s++) {
      now += CHECK_MS;
      await cap.reached();
    }
    expect(calls.listInstances).toBe(1);
  });

  it('the counting period grows with the busy instances (per slot), within [CHECK_MS, MAX_COUNT_MS]', () => {
    const job = (running: number, slots?: Record<string, number>) => ({ counts: { ...emptyCounts(), running }, instanceTypes: { a: 1, b: 1 }, ...(slots ? { slots } : {}) });
    expect(countPeriodMs(job(0))).toBe(CHECK_MS);
    expect(countPeriodMs(job(1))).toBe(CHECK_MS);
    expect(countPeriodMs(job(40))).toBe(40 * CHECK_MS);
    expect(countPeriodMs(job(40, { a: 4 }))).toBe(10 * CHECK_MS);
    expect(countPeriodMs(job(100_000))).toBe(MAX_COUNT_MS);
  });
});
