/** Local-only status store behaviour: schema, big submits, counters under several connections. */
import { describe, expect, it } from 'vitest';
import {
  LocalStatusStore,
  SCHEMA_VERSION,
  countTasksByState,
  openDb,
  schemaVersion,
} from '../../src/local/index.js';
import { JobNotFoundError, TaskNotFoundError } from '../../src/port-errors.js';
import { makeSpec, makeTasks } from '../contract/status.contract.js';
import { tempHome, testDb } from './helpers.js';

const { connect, job } = testDb('status', 's');

describe('local database', () => {
  it('is WAL with a busy timeout and the current schema; opening again is harmless', () => {
    const a = connect();
    const b = connect();
    expect(a.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(b.pragma('busy_timeout', { simple: true })).toBeGreaterThanOrEqual(1000);
    expect(a.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(schemaVersion(b)).toBe(SCHEMA_VERSION);
  });

  it('refuses a database from a newer gq', () => {
    const other = tempHome('newer');
    try {
      const db = openDb(other.home);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      expect(() => openDb(other.home)).toThrow(/newer/);
    } finally {
      other.remove();
    }
  });
});

describe('LocalStatusStore', () => {
  // Speed: bench/local-stores.mjs (npm run bench:stores), against a baseline of the same run.
  it('createJob of 100,000 tasks, again, and cancel: counted exactly', async () => {
    const st = new LocalStatusStore(connect());
    const name = job('big');
    const tasks = makeTasks(100_000);
    expect(await st.createJob(makeSpec(name, 100_000), tasks)).toEqual({ created: 100_000, existing: 0 });
    expect(await st.createJob(makeSpec(name, 100_000), tasks)).toEqual({ created: 0, existing: 100_000 });
    const cancel = await st.cancel(name);
    expect(cancel).toEqual({ cancelled: 100_000, stopping: 0 });
    expect((await st.getJob(name))!.counts.cancelled).toBe(100_000);
    expect(st.countTasksByState(name)).toEqual((await st.getJob(name))!.counts);
    await st.deleteJob(name);
  });

  it('typed errors: cancel / resubmit of an unknown job, tag of an unknown task', async () => {
    const st = new LocalStatusStore(connect());
    await expect(st.cancel('ghost')).rejects.toBeInstanceOf(JobNotFoundError);
    await expect(st.resubmitFailed('ghost')).rejects.toBeInstanceOf(JobNotFoundError);
    const name = job('tag');
    await st.createJob(makeSpec(name, 1), makeTasks(1));
    await expect(st.setTag(name, 2, 'k', 'v')).rejects.toBeInstanceOf(TaskNotFoundError);
  });

  it('keeps the whole spec and hands the claimed job back with its counters updated', async () => {
    const st = new LocalStatusStore(connect());
    const name = job('spec');
    const spec = makeSpec(name, 2, { env: { A: '1' }, outputs: ['out/x'], installKey: `jobs/${name}/install.sh` });
    await st.createJob(spec, makeTasks(2));
    const rec = await st.getJob(name);
    expect(rec).toMatchObject(spec);
    const c = await st.claim(name, 1, 'i-a', 60_000);
    expect(c.kind === 'claimed' && c.job.counts).toEqual({ queued: 1, running: 1, succeeded: 0, failed: 0, cancelled: 0 });
  });

  it('two connections (two processes) see each other and never double-claim', async () => {
    const a = new LocalStatusStore(connect());
    const b = new LocalStatusStore(connect());
    const name = job('two');
    await a.createJob(makeSpec(name, 200), makeTasks(200));
    const wins: string[] = [];
    await Promise.all(
      [a, b].map(async (st, i) => {
        for (let t = 1; t <= 200; t++) {
          const r = await st.claim(name, t, `i-${i}`, 60_000);
          if (r.kind === 'claimed') {
            wins.push(`${t}`);
            await st.complete(name, t, `i-${i}`, { kind: 'succeeded', exitCode: 0 });
          }
          await new Promise((r) => setImmediate(r));
        }
      }),
    );
    expect(wins).toHaveLength(200);
    expect(new Set(wins).size).toBe(200);
    expect((await b.getJob(name))!.counts).toMatchObject({ succeeded: 200, running: 0, queued: 0 });
    expect(countTasksByState(connect(), name)).toEqual((await a.getJob(name))!.counts);
  });

  it("holdInstanceMs: a worker's record waits for its next claim, listInstances, flush or the timer", async () => {
    const st = new LocalStatusStore(connect(), { holdInstanceMs: 60_000 });
    const other = new LocalStatusStore(connect());
    const name = job('hold');
    await st.createJob(makeSpec(name, 3), makeTasks(3));
    const rec = (state: 'IDLE' | 'READY', extra = {}) => ({ job: name, instance: 'i-h', instanceType: 'test.small', state, heartbeatAt: new Date().toISOString(), ...extra });
    await st.putInstance(rec('READY'));
    expect(await other.listInstances(name)).toEqual([]);
    const c = await st.claim(name, 1, 'i-h', 60_000);
    expect(c.kind).toBe('claimed');
    // Written by the claim, before the claim marked the worker BUSY with its task.
    expect(await other.listInstances(name)).toMatchObject([{ state: 'BUSY', tasks: [1] }]);
    await st.putInstance(rec('IDLE'));
    await st.putInstance(rec('IDLE', { detail: 'newest' }));
    expect((await other.listInstances(name))[0]!.state).toBe('BUSY');
    expect(await st.listInstances(name)).toMatchObject([{ state: 'IDLE', detail: 'newest' }]);
    expect(await other.listInstances(name)).toMatchObject([{ state: 'IDLE', detail: 'newest' }]);
    await st.putInstance(rec('READY'));
    st.flush();
    expect((await other.listInstances(name))[0]!.state).toBe('READY');

    const timed = new LocalStatusStore(connect(), { holdInstanceMs: 30 });
    await timed.putInstance(rec('IDLE', { detail: 'by the timer' }));
    await new Promise((r) => setTimeout(r, 120));
    expect((await other.listInstances(name))[0]!.detail).toBe('by the timer');
  });

  it('leases follow the injected clock', async () => {
    const clock = { now: 1_700_000_000_000 };
    const st = new LocalStatusStore(connect(), { clock: () => clock.now });
    const name = job('clock');
    await st.createJob(makeSpec(name, 1, { maxAttempts: 2 }), makeTasks(1));
    await st.claim(name, 1, 'i-a', 10_000);
    clock.now += 9_999;
    expect((await st.claim(name, 1, 'i-b', 10_000)).kind).toBe('leased');
    clock.now += 1;
    expect(await st.claim(name, 1, 'i-b', 10_000)).toMatchObject({ kind: 'claimed', task: { attempts: 2 } });
    clock.now += 10_000;
    expect(await st.claim(name, 1, 'i-c', 10_000)).toMatchObject({ kind: 'exhausted' });
    expect(st.countTasksByState(name)).toEqual({ queued: 0, running: 0, succeeded: 0, failed: 1, cancelled: 0 });
  });
});

describe('taskPages', () => {
  it('yields every task once, in task order, a page at a time', async () => {
    const st = new LocalStatusStore(connect());
    const name = job('pages');
    await st.createJob(makeSpec(name, 2500), makeTasks(2500));
    const sizes: number[] = [];
    const seen: number[] = [];
    for await (const page of st.taskPages(name, 1000)) {
      sizes.push(page.length);
      seen.push(...page.map((t) => t.task));
    }
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(seen).toEqual((await st.listTasks(name)).map((t) => t.task));
    const none: unknown[] = [];
    for await (const page of st.taskPages('no-such-job')) none.push(page);
    expect(none).toEqual([]);
  });
});
