/**
 * Behaviour every StatusStore must have. The counters of a job must equal a count of its task
 * items after every scenario; the factory may offer `countByState` (a direct count in the
 * backend), and the suite also counts `listTasks` itself. Lease tests use 1 s leases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusStore } from '../../src/ports.js';
import type { InstanceRecord, JobSpec, NewTask } from '../../src/job/model.js';
import { countKey, emptyCounts, type Counts } from '../../src/job/states.js';
import { sleep, uniqueJob, type ContractOptions } from './util.js';
import { historyContract } from './history.contract.js';
import { UserError } from '../../src/errors.js';
import { JobExistsError, JobNotFoundError, TaskNotFoundError } from '../../src/port-errors.js';

export type { ContractOptions };

export interface StatusFixture {
  status: StatusStore;
  /** A direct COUNT of the job's task items by state, when the backend can do one. */
  countByState?(job: string): Promise<Counts> | Counts;
  cleanup(): Promise<void>;
}

const TYPE = 'test.small';
/** A lease meant to run out during the test (waits are longer than it, never shorter). */
const LEASE = 1000;
/** A lease a heartbeat shortens to, so that it runs out soon after. */
const SHORT_LEASE = 300;

export function makeSpec(name: string, total: number, over: Partial<JobSpec> = {}): JobSpec {
  return {
    name,
    backend: 'local',
    createdAt: new Date().toISOString(),
    total,
    instanceTypes: { [TYPE]: total },
    codeKey: 'bundles/0000.tar.gz',
    resultsPath: 'results.json',
    outputs: [],
    maxAttempts: 3,
    timeoutSeconds: 0,
    installTimeoutSeconds: 60,
    installAttempts: 1,
    visibilitySeconds: 30,
    idleSeconds: 5,
    ...over,
  };
}

export function makeTasks(n: number, from = 1): NewTask[] {
  return Array.from({ length: n }, (_, i) => ({ task: from + i, instanceType: TYPE, command: `echo task ${from + i}` }));
}

export function statusContract(name: string, make: () => Promise<StatusFixture>, opts: ContractOptions = {}): void {
  (opts.concurrent ? describe.concurrent : describe)(`StatusStore contract: ${name}`, () => {
    let fx: StatusFixture;
    let st: StatusStore;
    const jobs: string[] = [];

    beforeAll(async () => {
      fx = await make();
      st = fx.status;
    });
    afterAll(async () => {
      for (const j of jobs) await st.deleteJob(j).catch(() => {});
      await fx.cleanup();
    });

    async function job(tag: string, n: number, over: Partial<JobSpec> = {}): Promise<string> {
      const name = uniqueJob(tag);
      jobs.push(name);
      const r = await st.createJob(makeSpec(name, n, over), makeTasks(n));
      expect(r).toEqual({ created: n, existing: 0 });
      return name;
    }

    /** The job counters equal the task items counted by state, and match `expected` if given. */
    async function checkCounters(name: string, expected?: Partial<Counts>): Promise<Counts> {
      const rec = await st.getJob(name);
      expect(rec).toBeDefined();
      const listed = emptyCounts();
      for (const t of await st.listTasks(name)) listed[countKey(t.state)]++;
      expect(rec!.counts).toEqual(listed);
      if (fx.countByState) expect(await fx.countByState(name)).toEqual(rec!.counts);
      if (expected) expect(rec!.counts).toEqual({ ...emptyCounts(), ...expected });
      return rec!.counts;
    }

    it('createJob is idempotent: a second run creates nothing and counts nothing twice', async () => {
      const name = uniqueJob('create');
      jobs.push(name);
      const spec = makeSpec(name, 10);
      expect(await st.createJob(spec, makeTasks(4))).toEqual({ created: 4, existing: 0 }); // half-done submit
      expect(await st.createJob(spec, makeTasks(10))).toEqual({ created: 6, existing: 4 });
      expect(await st.createJob(spec, makeTasks(10))).toEqual({ created: 0, existing: 10 });
      await checkCounters(name, { queued: 10 });
      const rec = await st.getJob(name);
      expect(rec).toMatchObject({ name, total: 10, codeKey: spec.codeKey, cancelRequested: false, maxAttempts: 3 });
      const t = await st.getTask(name, 7);
      expect(t).toMatchObject({ job: name, task: 7, instanceType: TYPE, command: 'echo task 7', state: 'QUEUED', attempts: 0, tags: {} });
    });

    it('createJob with another spec under an existing name is refused', async () => {
      const name = await job('clash', 2);
      await expect(st.createJob(makeSpec(name, 2, { codeKey: 'bundles/other.tar.gz' }), makeTasks(2))).rejects.toThrow(
        /already exists/,
      );
      await expect(st.createJob(makeSpec(name, 3), makeTasks(3))).rejects.toBeInstanceOf(JobExistsError);
      await checkCounters(name, { queued: 2 });
    });

    it('missing jobs and tasks', async () => {
      const name = await job('missing', 1);
      expect(await st.getJob(uniqueJob('nope'))).toBeUndefined();
      expect(await st.getTask(name, 99)).toBeUndefined();
      expect(await st.claim(name, 99, 'i-a', LEASE)).toEqual({ kind: 'missing' });
      expect(await st.heartbeat(name, 99, 'i-a', LEASE)).toBe('lost');
      expect(await st.complete(name, 99, 'i-a', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'lost' });
      expect(await st.listTasks(uniqueJob('nope'))).toEqual([]);
    });

    it('claim → heartbeat → complete(succeeded)', async () => {
      const name = await job('flow', 3);
      const c = await st.claim(name, 2, 'i-a', 60_000);
      expect(c.kind).toBe('claimed');
      if (c.kind !== 'claimed') return;
      expect(c.task).toMatchObject({ task: 2, state: 'RUNNING', attempts: 1, instance: 'i-a', command: 'echo task 2' });
      expect(c.task.leaseUntil).toBeGreaterThan(Date.now() + 50_000);
      expect(c.job.name).toBe(name);
      await checkCounters(name, { queued: 2, running: 1 });

      expect(await st.heartbeat(name, 2, 'i-a', 60_000)).toBe('ok');
      expect(await st.heartbeat(name, 2, 'i-b', 60_000)).toBe('lost');
      const done = await st.complete(name, 2, 'i-a', {
        kind: 'succeeded',
        exitCode: 0,
        resultKey: `jobs/${name}/tasks/2/files/results.json`,
        logKey: `jobs/${name}/tasks/2/log.txt`,
        outputKeys: ['a', 'b'],
      });
      expect(done).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
      const t = await st.getTask(name, 2);
      expect(t).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, attempts: 1, outputKeys: ['a', 'b'] });
      expect(t!.instance).toBeUndefined();
      expect(t!.leaseUntil).toBeUndefined();
      expect(typeof t!.finishedAt).toBe('string');
      await checkCounters(name, { queued: 2, succeeded: 1 });

      // A duplicate delivery of a finished task.
      expect(await st.claim(name, 2, 'i-b', LEASE)).toEqual({ kind: 'done', state: 'SUCCEEDED' });
      expect(await st.heartbeat(name, 2, 'i-a', LEASE)).toBe('lost');
      expect(await st.complete(name, 2, 'i-a', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'lost' });
      await checkCounters(name, { queued: 2, succeeded: 1 });
    });

    it('version grows with every write', async () => {
      const name = await job('version', 1);
      const v0 = (await st.getTask(name, 1))!.version;
      await st.claim(name, 1, 'i-a', 60_000);
      const v1 = (await st.getTask(name, 1))!.version;
      await st.heartbeat(name, 1, 'i-a', 60_000);
      const v2 = (await st.getTask(name, 1))!.version;
      expect(v1).toBeGreaterThan(v0);
      expect(v2).toBeGreaterThan(v1);
    });

    it('a failed attempt is retried until maxAttempts, then FAILED', async () => {
      const name = await job('retry', 2, { maxAttempts: 2 });
      expect((await st.claim(name, 1, 'i-a', 60_000)).kind).toBe('claimed');
      const fail = { kind: 'failed', exitCode: 3, error: 'exit 3', stderrTail: 'boom', retryable: true } as const;
      expect(await st.complete(name, 1, 'i-a', fail)).toEqual({ kind: 'recorded', state: 'QUEUED' });
      expect(await st.getTask(name, 1)).toMatchObject({ state: 'QUEUED', attempts: 1, exitCode: 3, error: 'exit 3' });
      await checkCounters(name, { queued: 2 });

      const again = await st.claim(name, 1, 'i-b', 60_000);
      expect(again).toMatchObject({ kind: 'claimed', task: { attempts: 2, instance: 'i-b' } });
      expect(await st.complete(name, 1, 'i-b', fail)).toEqual({ kind: 'recorded', state: 'FAILED' });
      expect(await st.getTask(name, 1)).toMatchObject({ state: 'FAILED', attempts: 2, stderrTail: 'boom' });
      await checkCounters(name, { queued: 1, failed: 1 });

      // Not retryable: FAILED at once, whatever attempts remain.
      await st.claim(name, 2, 'i-a', 60_000);
      expect(await st.complete(name, 2, 'i-a', { ...fail, retryable: false })).toEqual({ kind: 'recorded', state: 'FAILED' });
      await checkCounters(name, { failed: 2 });
    });

    it('a released task goes back to the queue without using an attempt', async () => {
      const name = await job('release', 1, { maxAttempts: 1 });
      await st.claim(name, 1, 'i-a', 60_000);
      expect(await st.complete(name, 1, 'i-a', { kind: 'released', reason: 'SIGTERM' })).toEqual({
        kind: 'recorded',
        state: 'QUEUED',
      });
      expect(await st.getTask(name, 1)).toMatchObject({ state: 'QUEUED', attempts: 0 });
      await checkCounters(name, { queued: 1 });
      expect(await st.claim(name, 1, 'i-b', 60_000)).toMatchObject({ kind: 'claimed', task: { attempts: 1 } });
      await checkCounters(name, { running: 1 });
    });

    it('an interrupted attempt is counted as an interruption, with its checkpoint, and not charged', async () => {
      const name = await job('interrupt', 1, { maxAttempts: 1 });
      const key = `jobs/${name}/tasks/1/checkpoint.tar.gz`;
      for (const [n, instance] of [[1, 'i-a'], [2, 'i-b']] as const) {
        await st.claim(name, 1, instance, 60_000);
        const outcome = { kind: 'released', reason: 'instance interrupted', interrupted: true, ...(n === 1 ? { checkpointKey: key } : {}) } as const;
        expect(await st.complete(name, 1, instance, outcome)).toEqual({ kind: 'recorded', state: 'QUEUED' });
        expect(await st.getTask(name, 1)).toMatchObject({ state: 'QUEUED', attempts: 0, interruptions: n, checkpointKey: key });
      }
      await st.claim(name, 1, 'i-c', 60_000);
      expect(await st.complete(name, 1, 'i-c', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
      expect(await st.getTask(name, 1)).toMatchObject({ attempts: 1, interruptions: 2, checkpointKey: key });
      await checkCounters(name, { succeeded: 1 });
    });

    it('a live lease is respected; an expired one is taken over; the old holder has lost it', async () => {
      const name = await job('lease', 1);
      // A long lease while it must be live (a loaded machine may pause between calls), then a
      // heartbeat shortens it to one that runs out: waiting past it holds however slow the calls.
      expect((await st.claim(name, 1, 'i-a', 60_000)).kind).toBe('claimed');
      const dup = await st.claim(name, 1, 'i-b', LEASE);
      expect(dup.kind).toBe('leased');
      if (dup.kind === 'leased') expect(dup.leaseUntil).toBeGreaterThan(Date.now());
      await checkCounters(name, { running: 1 });

      expect(await st.heartbeat(name, 1, 'i-a', SHORT_LEASE)).toBe('ok');
      await sleep(SHORT_LEASE + 200);
      const take = await st.claim(name, 1, 'i-b', 60_000);
      expect(take).toMatchObject({ kind: 'claimed', task: { state: 'RUNNING', attempts: 2, instance: 'i-b' } });
      await checkCounters(name, { running: 1 });

      expect(await st.heartbeat(name, 1, 'i-a', LEASE)).toBe('lost');
      expect(await st.complete(name, 1, 'i-a', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'lost' });
      expect(await st.getTask(name, 1)).toMatchObject({ state: 'RUNNING', instance: 'i-b' });
      expect(await st.complete(name, 1, 'i-b', { kind: 'succeeded', exitCode: 0 })).toEqual({
        kind: 'recorded',
        state: 'SUCCEEDED',
      });
      await checkCounters(name, { succeeded: 1 });
    });

    it('a heartbeat keeps the lease alive', async () => {
      const name = await job('heartbeat', 1);
      // The claim's 1.5 s lease is renewed after 0.3 s for 2.5 s; the check comes after the claim's
      // lease would have run out (>= 1.7 s) and long before the renewed one does (>= 2.8 s): more
      // than a second of margin on either side for a slow machine.
      await st.claim(name, 1, 'i-a', 1500);
      await sleep(300);
      expect(await st.heartbeat(name, 1, 'i-a', 2500)).toBe('ok');
      await sleep(1400);
      expect((await st.claim(name, 1, 'i-b', LEASE)).kind).toBe('leased');
    });

    it('a task whose workers were lost maxAttempts times is exhausted (FAILED)', async () => {
      const name = await job('exhaust', 1, { maxAttempts: 1 });
      await st.claim(name, 1, 'i-a', LEASE);
      await sleep(LEASE + 200);
      const r = await st.claim(name, 1, 'i-b', LEASE);
      expect(r.kind).toBe('exhausted');
      if (r.kind === 'exhausted') expect(r.task).toMatchObject({ state: 'FAILED', attempts: 1 });
      expect(await st.getTask(name, 1)).toMatchObject({ state: 'FAILED' });
      expect((await st.getTask(name, 1))!.error).toMatch(/lost/);
      expect(await st.claim(name, 1, 'i-c', LEASE)).toEqual({ kind: 'done', state: 'FAILED' });
      await checkCounters(name, { failed: 1 });
    });

    it('complete by an instance that does not hold the task is lost and changes nothing', async () => {
      const name = await job('wrong', 1);
      await st.claim(name, 1, 'i-a', 60_000);
      expect(await st.complete(name, 1, 'i-x', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'lost' });
      expect(await st.complete(name, 1, 'i-x', { kind: 'failed', error: 'x', retryable: true })).toEqual({ kind: 'lost' });
      expect(await st.getTask(name, 1)).toMatchObject({ state: 'RUNNING', instance: 'i-a' });
      await checkCounters(name, { running: 1 });
    });

    it('cancel: queued tasks at once, running ones asked to stop via the heartbeat', async () => {
      const name = await job('cancel', 4);
      await st.claim(name, 1, 'i-a', 60_000);
      await st.claim(name, 2, 'i-b', LEASE);
      await st.claim(name, 3, 'i-c', 60_000);
      expect(await st.complete(name, 3, 'i-c', { kind: 'succeeded', exitCode: 0 })).toMatchObject({ kind: 'recorded' });
      await sleep(LEASE + 200); // task 2's worker is gone

      expect(await st.cancel(name)).toEqual({ cancelled: 2, stopping: 1 }); // task 4 (queued) and task 2 (lease expired); task 1 is running
      expect((await st.getJob(name))!.cancelRequested).toBe(true);
      await checkCounters(name, { running: 1, succeeded: 1, cancelled: 2 });
      expect(await st.getTask(name, 4)).toMatchObject({ state: 'CANCELLED' });
      expect(await st.getTask(name, 2)).toMatchObject({ state: 'CANCELLED' });

      expect(await st.heartbeat(name, 1, 'i-a', 60_000)).toBe('cancel');
      // A second cancel is harmless.
      expect(await st.cancel(name)).toEqual({ cancelled: 0, stopping: 1 });
      expect(await st.complete(name, 1, 'i-a', { kind: 'cancelled' })).toEqual({ kind: 'recorded', state: 'CANCELLED' });
      await checkCounters(name, { succeeded: 1, cancelled: 3 });
      // A late duplicate delivery after the cancel.
      expect(await st.claim(name, 4, 'i-d', LEASE)).toEqual({ kind: 'done', state: 'CANCELLED' });
    });

    it('a failed attempt of a cancelled job is not retried', async () => {
      const name = await job('cancelfail', 1, { maxAttempts: 3 });
      await st.claim(name, 1, 'i-a', 60_000);
      await st.cancel(name);
      expect(await st.complete(name, 1, 'i-a', { kind: 'failed', error: 'killed', retryable: true })).toEqual({
        kind: 'recorded',
        state: 'FAILED',
      });
      await checkCounters(name, { failed: 1 });
    });

    it('setMaxCost sets the job\'s cost cap and keeps the rest of its spec; an unknown job is JobNotFoundError', async () => {
      const name = uniqueJob('cap');
      jobs.push(name);
      await st.createJob(makeSpec(name, 2), makeTasks(2));
      await st.setMaxCost(name, 12.5);
      expect(await st.getJob(name)).toMatchObject({ name, maxCost: 12.5, total: 2, maxAttempts: 3, counts: { queued: 2 } });
      await expect(st.setMaxCost(uniqueJob('ghost'), 1)).rejects.toBeInstanceOf(JobNotFoundError);
    });

    it('markCapReached records the stop once, only for the cap in force; setMaxCost clears it', async () => {
      const name = uniqueJob('capstop');
      jobs.push(name);
      await st.createJob({ ...makeSpec(name, 1), maxCost: 2 }, makeTasks(1));
      const stop = { at: '2026-01-01T00:00:00.000Z', maxCost: 2, spend: 1.5, committed: 0.25, next: 0.25, by: 'i-a' };
      expect(await st.markCapReached(name, { ...stop, maxCost: 1 })).toBe(false); // not the cap in force
      expect((await st.getJob(name))?.capStop).toBeUndefined();
      expect(await st.markCapReached(name, stop)).toBe(true);
      expect(await st.markCapReached(name, { ...stop, by: 'i-b' })).toBe(false); // once
      expect(await st.getJob(name)).toMatchObject({ maxCost: 2, capStop: stop, total: 1 });
      await st.setMaxCost(name, 5); // gq resume --max-cost 5
      const raised = await st.getJob(name);
      expect(raised?.maxCost).toBe(5);
      expect(raised?.capStop).toBeUndefined();
      expect(await st.markCapReached(name, { ...stop, maxCost: 5 })).toBe(true);
      await expect(st.markCapReached(uniqueJob('ghost'), stop)).rejects.toBeInstanceOf(JobNotFoundError);
    });

    it('cancel of an unknown job is an error', async () => {
      await expect(st.cancel(uniqueJob('ghost'))).rejects.toThrow();
    });

    it('resubmitFailed puts FAILED tasks back with a fresh attempt budget', async () => {
      const name = await job('resubmit', 4, { maxAttempts: 1 });
      const fail = { kind: 'failed', exitCode: 1, error: 'exit 1', retryable: true } as const;
      for (const t of [1, 3, 4]) await st.claim(name, t, 'i-a', 60_000);
      await st.complete(name, 1, 'i-a', fail);
      await st.complete(name, 3, 'i-a', { kind: 'succeeded', exitCode: 0 });
      await st.complete(name, 4, 'i-a', fail);
      await checkCounters(name, { queued: 1, succeeded: 1, failed: 2 });

      const back = await st.resubmitFailed(name);
      expect(back).toEqual([
        { task: 1, instanceType: TYPE, command: 'echo task 1' },
        { task: 4, instanceType: TYPE, command: 'echo task 4' },
      ]);
      const t1 = await st.getTask(name, 1);
      expect(t1).toMatchObject({ state: 'QUEUED', attempts: 0 });
      expect(t1!.error).toBeUndefined();
      expect(t1!.exitCode).toBeUndefined();
      await checkCounters(name, { queued: 3, succeeded: 1 });
      expect(await st.resubmitFailed(name)).toEqual([]);
      expect(await st.claim(name, 1, 'i-b', 60_000)).toMatchObject({ kind: 'claimed', task: { attempts: 1 } });
      await checkCounters(name, { queued: 2, running: 1, succeeded: 1 });
    });

    it('setTag adds progress tags to a task', async () => {
      const name = await job('tag', 2);
      await st.setTag(name, 1, 'progress', '10%');
      await st.setTag(name, 1, 'stage', 'fit');
      await st.setTag(name, 1, 'progress', '50%');
      expect((await st.getTask(name, 1))!.tags).toEqual({ progress: '50%', stage: 'fit' });
      expect((await st.getTask(name, 2))!.tags).toEqual({});
      // Tags survive state changes.
      await st.claim(name, 1, 'i-a', 60_000);
      await st.complete(name, 1, 'i-a', { kind: 'succeeded', exitCode: 0 });
      expect((await st.getTask(name, 1))!.tags).toEqual({ progress: '50%', stage: 'fit' });
      await checkCounters(name, { queued: 1, succeeded: 1 });
    });

    it('setTag changes the tags only: the version and the lease holder\'s next heartbeat and complete are untouched', async () => {
      const name = await job('tagver', 1);
      const c = await st.claim(name, 1, 'i-a', 60_000);
      expect(c.kind).toBe('claimed');
      const before = (await st.getTask(name, 1))!;
      await st.setTag(name, 1, 'progress', '1/3');
      const after = (await st.getTask(name, 1))!;
      expect(after).toEqual({ ...before, tags: { progress: '1/3' }, tagTimes: { progress: expect.any(String) } });
      expect(await st.heartbeat(name, 1, 'i-a', 60_000)).toBe('ok');
      await st.setTag(name, 1, 'progress', '2/3');
      expect(await st.complete(name, 1, 'i-a', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
      expect((await st.getTask(name, 1))!.tags).toEqual({ progress: '2/3' });
    });

    it('setTag records when each tag was last set, and the times survive the task\'s state changes', async () => {
      const name = await job('tagtime', 1);
      const t0 = Date.now();
      await st.setTag(name, 1, 'percent_complete', '10');
      await st.setTag(name, 1, 'stage', 'fit');
      const first = (await st.getTask(name, 1))!.tagTimes!;
      expect(Object.keys(first).sort()).toEqual(['percent_complete', 'stage']);
      for (const at of Object.values(first)) expect(Date.parse(at)).toBeGreaterThanOrEqual(t0 - 1000);
      await sleep(30);
      await st.claim(name, 1, 'i-a', 60_000);
      await st.setTag(name, 1, 'percent_complete', '40');
      expect(await st.heartbeat(name, 1, 'i-a', 60_000)).toBe('ok');
      const second = (await st.getTask(name, 1))!;
      expect(second.tags).toEqual({ percent_complete: '40', stage: 'fit' });
      // Only the tag set again has a new time; the other keeps its own.
      expect(Date.parse(second.tagTimes!.percent_complete!)).toBeGreaterThan(Date.parse(first.percent_complete!));
      expect(second.tagTimes!.stage).toBe(first.stage);
      await st.complete(name, 1, 'i-a', { kind: 'succeeded', exitCode: 0 });
      expect((await st.getTask(name, 1))!.tagTimes).toEqual(second.tagTimes);
    });

    it('createJob refuses task numbers that are not whole numbers from 1, or that appear twice, and writes no task', async () => {
      const name = uniqueJob('badnum');
      const spec = makeSpec(name, 2);
      for (const tasks of [makeTasks(1, 0), [...makeTasks(1), { ...makeTasks(1)[0]! }], [{ ...makeTasks(1)[0]!, task: 1.5 }]]) {
        await expect(st.createJob(spec, tasks)).rejects.toThrow(/invalid task number|appears twice/);
      }
      expect(await st.listTasks(name)).toEqual([]);
    });

    it('setTag keeps at most 50 keys per task (a new 51st is refused, existing keys still change)', async () => {
      const name = await job('tagcap', 1);
      for (let i = 0; i < 50; i++) await st.setTag(name, 1, `k${i}`, 'v');
      await expect(st.setTag(name, 1, 'one-more', 'v')).rejects.toBeInstanceOf(UserError);
      await st.setTag(name, 1, 'k7', 'changed');
      const tags = (await st.getTask(name, 1))!.tags;
      expect(Object.keys(tags)).toHaveLength(50);
      expect(tags.k7).toBe('changed');
      await expect(st.setTag(name, 9, 'k', 'v')).rejects.toBeInstanceOf(TaskNotFoundError);
      await expect(st.listTasks(name, { states: ['NOPE' as never] })).rejects.toBeInstanceOf(UserError);
    });

    it('listTasks in task order, filtered by state', async () => {
      const name = await job('list', 5);
      await st.claim(name, 2, 'i-a', 60_000);
      await st.claim(name, 4, 'i-a', 60_000);
      await st.complete(name, 4, 'i-a', { kind: 'succeeded', exitCode: 0 });
      expect((await st.listTasks(name)).map((t) => t.task)).toEqual([1, 2, 3, 4, 5]);
      expect((await st.listTasks(name, { states: ['QUEUED'] })).map((t) => t.task)).toEqual([1, 3, 5]);
      expect((await st.listTasks(name, { states: ['RUNNING', 'SUCCEEDED'] })).map((t) => t.task)).toEqual([2, 4]);
      expect(await st.listTasks(name, { states: ['FAILED'] })).toEqual([]);
    });

    it('listTasks with a limit: the first tasks in task order only (a bad limit is a bug)', async () => {
      const name = await job('limit', 6, { maxAttempts: 1 });
      for (const t of [2, 3, 5, 6]) {
        await st.claim(name, t, 'i-a', 60_000);
        await st.complete(name, t, 'i-a', { kind: 'failed', exitCode: 1 });
      }
      const failed = await st.listTasks(name, { states: ['FAILED'] });
      expect(failed.map((t) => t.task)).toEqual([2, 3, 5, 6]);
      expect(await st.listTasks(name, { states: ['FAILED'], limit: 3 })).toEqual(failed.slice(0, 3));
      expect((await st.listTasks(name, { states: ['QUEUED', 'FAILED'], limit: 2 })).map((t) => t.task)).toEqual([1, 2]);
      expect((await st.listTasks(name, { limit: 4 })).map((t) => t.task)).toEqual([1, 2, 3, 4]);
      expect((await st.listTasks(name, { states: ['FAILED'], limit: 100 })).map((t) => t.task)).toEqual([2, 3, 5, 6]);
      for (const limit of [0, -1, 1.5]) await expect(st.listTasks(name, { limit })).rejects.toThrow(/limit/);
    });

    it('taskPages: every task once, in task order, at most pageSize a page, the same records as listTasks', async () => {
      const name = await job('pages', 25);
      await st.claim(name, 12, 'i-a', 60_000);
      const pages: number[][] = [];
      const seen = [];
      for await (const page of st.taskPages(name, 10)) {
        pages.push(page.map((t) => t.task));
        seen.push(...page);
      }
      expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
      expect(pages.flat()).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      // Commands, states and all: each page holds the records listTasks would give.
      expect(seen).toEqual(await st.listTasks(name));
      expect(seen[11]).toMatchObject({ state: 'RUNNING', instance: 'i-a', command: 'echo task 12' });
      const none: unknown[] = [];
      for await (const page of st.taskPages(uniqueJob('nope'))) none.push(page);
      expect(none).toEqual([]);
    });

    it('listJobs lists newest first', async () => {
      const base = Date.now();
      const names: string[] = [];
      for (let i = 0; i < 3; i++) {
        const n = uniqueJob('order');
        jobs.push(n);
        names.push(n);
        await st.createJob(makeSpec(n, 1, { createdAt: new Date(base + i * 1000).toISOString() }), makeTasks(1));
      }
      const listed = (await st.listJobs()).map((j) => j.name).filter((n) => names.includes(n));
      expect(listed).toEqual([...names].reverse());
      const one = (await st.listJobs()).find((j) => j.name === names[0]);
      expect(one).toMatchObject({ counts: { ...emptyCounts(), queued: 1 }, cancelRequested: false });
    });

    it('instances: put replaces, list is per job', async () => {
      const name = await job('inst', 1);
      const other = await job('inst', 1);
      const rec: InstanceRecord = {
        job: name,
        instance: 'i-1',
        instanceType: TYPE,
        state: 'BOOTING',
        heartbeatAt: new Date().toISOString(),
        pid: 1234,
      };
      await st.putInstance(rec);
      await st.putInstance({ ...rec, instance: 'i-2' });
      await st.putInstance({ ...rec, state: 'BUSY', detail: 'task 1' });
      await st.putInstance({ ...rec, job: other, instance: 'i-9' });
      const list = (await st.listInstances(name)).sort((a, b) => a.instance.localeCompare(b.instance));
      expect(list).toEqual([
        { ...rec, state: 'BUSY', detail: 'task 1' },
        { ...rec, instance: 'i-2' },
      ]);
      expect((await st.listInstances(other)).map((r) => r.instance)).toEqual(['i-9']);
    });

    it('a claim records its worker as BUSY with the task, keeping the rest of the record', async () => {
      const name = await job('busy', 2);
      const rec: InstanceRecord = { job: name, instance: 'i-1', instanceType: TYPE, state: 'READY', heartbeatAt: '2020-01-01T00:00:00.000Z', pid: 4321, installLogKey: 'x/install.log' };
      await st.putInstance(rec);
      expect((await st.claim(name, 2, 'i-1', 60_000)).kind).toBe('claimed');
      const [busy] = await st.listInstances(name);
      expect(busy).toMatchObject({ ...rec, state: 'BUSY', detail: 'task 2', heartbeatAt: expect.any(String) });
      expect(Date.parse(busy!.heartbeatAt)).toBeGreaterThan(Date.parse(rec.heartbeatAt));
      // Not claimed (held by another): the record is left alone.
      await st.putInstance({ ...rec, instance: 'i-2' });
      expect((await st.claim(name, 2, 'i-2', 60_000)).kind).toBe('leased');
      expect((await st.listInstances(name)).find((i) => i.instance === 'i-2')).toEqual({ ...rec, instance: 'i-2' });
      // A worker with no record yet gets one.
      expect((await st.claim(name, 1, 'i-3', 60_000)).kind).toBe('claimed');
      expect((await st.listInstances(name)).find((i) => i.instance === 'i-3')).toMatchObject({
        job: name,
        instance: 'i-3',
        instanceType: TYPE,
        state: 'BUSY',
        detail: 'task 1',
      });
      await checkCounters(name, { running: 2 });
    });

    it('a worker with several slots: each claim adds its task to `tasks`, `task` stays the first', async () => {
      const name = await job('slots', 3);
      const rec: InstanceRecord = { job: name, instance: 'i-1', instanceType: TYPE, state: 'READY', heartbeatAt: '2020-01-01T00:00:00.000Z' };
      await st.putInstance(rec);
      expect((await st.claim(name, 2, 'i-1', 60_000)).kind).toBe('claimed');
      expect((await st.claim(name, 3, 'i-1', 60_000)).kind).toBe('claimed');
      const [busy] = await st.listInstances(name);
      expect(busy).toMatchObject({ state: 'BUSY', task: 2, tasks: [2, 3] });
      // The worker's own write names the tasks still running; the next claim adds to them.
      await st.putInstance({ ...rec, state: 'BUSY', task: 3, tasks: [3] });
      expect((await st.claim(name, 1, 'i-1', 60_000)).kind).toBe('claimed');
      expect((await st.listInstances(name))[0]).toMatchObject({ state: 'BUSY', task: 3, tasks: [3, 1] });
      await checkCounters(name, { running: 3 });
    });

    it('deleteJob removes the job, its tasks and its instances', async () => {
      const name = await job('delete', 3);
      await st.putInstance({ job: name, instance: 'i-1', instanceType: TYPE, state: 'IDLE', heartbeatAt: new Date().toISOString() });
      await st.deleteJob(name);
      expect(await st.getJob(name)).toBeUndefined();
      expect(await st.listTasks(name)).toEqual([]);
      expect(await st.listInstances(name)).toEqual([]);
      expect((await st.listJobs()).some((j) => j.name === name)).toBe(false);
      // The name can be used again.
      expect(await st.createJob(makeSpec(name, 2, { codeKey: 'bundles/new.tar.gz' }), makeTasks(2))).toEqual({
        created: 2,
        existing: 0,
      });
      await checkCounters(name, { queued: 2 });
    });

    it('many concurrent claims of one task: exactly one wins', async () => {
      const name = await job('race', 1);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => st.claim(name, 1, `i-${i}`, 60_000)),
      );
      expect(results.filter((r) => r.kind === 'claimed')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'leased')).toHaveLength(7);
      await checkCounters(name, { running: 1 });
    });

    historyContract(() => st, job);
  });
}
