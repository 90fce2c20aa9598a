/**
 * A worker with several slots, in this process on the local backend: it runs up to its slots'
 * tasks at once, each in its own folder, asks for as many messages as it has free slots, keeps
 * scale-in protection while any slot is busy, lists its tasks on its record, leaves only once
 * every slot is idle, and an interruption stops every slot.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, TaskQueue } from '@gq/common';
import { InProcess, TYPE, until, wrap, writesResult, type Fixture } from './in-process.js';

const t = new InProcess();
afterEach(() => t.cleanup());

/** A task that notes its folder and its start and end times (ns) in `out`, runs `seconds`, then `then`. */
function timed(out: string, n: number, seconds: number, then = writesResult(String(n))): string {
  return `echo "$PWD $(date +%s%N)" > ${out}/${n}.start; sleep ${seconds}; date +%s%N > ${out}/${n}.end; ${then}`;
}

/** A job of timed tasks (`rows` made from the folder they note their times in), and that folder. */
async function timedJob(label: string, rows: (out: string) => string[], over: Parameters<InProcess['job']>[2]): Promise<{ f: Fixture; out: string }> {
  let out = '';
  const f = await t.job(
    label,
    (home) => {
      out = join(home, 'out');
      mkdirSync(out);
      return rows(out);
    },
    over,
  );
  return { f, out };
}

interface Span {
  dir: string;
  start: number;
  end: number;
}
function spanOf(out: string, n: number): Span {
  const [dir, start] = readFileSync(join(out, `${n}.start`), 'utf8').trim().split(' ');
  return { dir: dir!, start: Number(start) / 1e6, end: Number(readFileSync(join(out, `${n}.end`), 'utf8').trim()) / 1e6 };
}

/** The job's backend, noting each protection change with how many tasks were RUNNING then. */
function watchingProtection(f: Fixture): { backend: Backend; changes: { on: boolean; running: number }[] } {
  const changes: { on: boolean; running: number }[] = [];
  const fleet = wrap(f.backend.fleet, {
    async protect(job, type, instance, on) {
      changes.push({ on, running: (await f.backend.status.getJob(job))!.counts.running });
      await f.backend.fleet.protect(job, type, instance, on);
    },
  });
  return { backend: { ...f.backend, fleet }, changes };
}

/** The queue, noting the `max` of each receive. */
function noteMax(maxes: number[]) {
  return (q: TaskQueue) =>
    wrap(q, {
      async receive(o) {
        maxes.push(o.max);
        return q.receive(o);
      },
    });
}

describe('agent loop: slots', () => {
  it('3 slots run 3 tasks at once in separate folders; a failing one does not disturb the others', async () => {
    // Task 2 fails (one attempt): the other two slots carry on; task 4 waits for a free slot.
    const { f, out } = await timedJob('slots-3', (out) => [timed(out, 1, 2), timed(out, 2, 1, 'exit 3'), timed(out, 3, 2), timed(out, 4, 0)], {
      slots: { [TYPE]: 3 },
      maxAttempts: 1,
      idleSeconds: 1,
    });
    const { backend, changes } = watchingProtection(f);
    const maxes: number[] = [];
    const w = await t.start(f, 'w-slots', { backend, queue: noteMax(maxes), realTime: true });

    // The record lists the three tasks while they run (`gq status` reads them from it).
    await until('three tasks running', async () => (await f.backend.status.listTasks(f.job, { states: ['RUNNING'] })).length === 3);
    await until('the record to list them', async () => ((await f.backend.status.listInstances(f.job))[0]?.tasks ?? []).length === 3);
    const busy = (await f.backend.status.listInstances(f.job))[0]!;
    expect(busy).toMatchObject({ state: 'BUSY', task: 1, tasks: [1, 2, 3] });

    const r = await w.done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 4, reason: 'idle' });
    const spans = [1, 2, 3, 4].map((n) => spanOf(out, n));
    // At once: each of the first three started before any of them ended.
    const firstEnd = Math.min(...spans.slice(0, 3).map((s) => s.end));
    for (const s of spans.slice(0, 3)) expect(s.start).toBeLessThan(firstEnd);
    // Task 4 waited for a slot: it started after one of the first three had ended.
    expect(spans[3]!.start).toBeGreaterThanOrEqual(firstEnd);
    expect(new Set(spans.map((s) => s.dir)).size).toBe(4);
    const all = await f.backend.status.listTasks(f.job);
    const states = Object.fromEntries(all.map((x) => [x.task, x.state]));
    expect(states).toEqual({ 1: 'SUCCEEDED', 2: 'FAILED', 3: 'SUCCEEDED', 4: 'SUCCEEDED' });
    // Asked for as many messages as free slots: 3 at first, never more.
    expect(maxes[0]).toBe(3);
    expect(Math.max(...maxes)).toBe(3);
    // Protected once while busy; unprotected only when no slot ran a task.
    expect(changes[0]).toMatchObject({ on: true });
    expect(changes.filter((c) => !c.on).every((c) => c.running === 0)).toBe(true);
    expect(changes.map((c) => c.on)).toEqual([true, false]);
    expect((await f.backend.status.listInstances(f.job))[0]).toMatchObject({ state: 'STOPPED' });
    expect((await f.backend.status.listInstances(f.job))[0]!.tasks).toBeUndefined();
  });

  it('an idle period does not end while one slot still runs', async () => {
    // An idle period of 1 s, shorter than the 3 s task.
    const { f } = await timedJob('slots-idle', (out) => [timed(out, 1, 0), timed(out, 2, 3)], { slots: { [TYPE]: 2 }, idleSeconds: 1 });
    const w = await t.start(f, 'w-idle', { realTime: true });
    const r = await w.done;
    expect(r).toMatchObject({ tasksRun: 2, reason: 'idle' });
    expect((await f.backend.status.getTask(f.job, 2))!.state).toBe('SUCCEEDED');
  });

  for (const reason of ['release', 'shutdown'] as const) {
    it(`${reason === 'release' ? 'a Spot notice' : 'a second SIGTERM'} stops every slot and gives all their tasks back`, async () => {
      const slow = `sleep 30; ${writesResult('1')}`;
      const f = await t.job(`slots-int-${reason}`, [slow, slow, slow], { slots: { [TYPE]: 3 } });
      const w = await t.start(f, 'w-int', { realTime: true });
      await until('three tasks running', async () => (await f.backend.status.listTasks(f.job, { states: ['RUNNING'] })).length === 3);
      const t0 = Date.now();
      w.agent.interrupt(reason);
      const r = await w.done;
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(r).toMatchObject({ reason: 'interrupted', tasksRun: 3 });
      for (const x of await f.backend.status.listTasks(f.job)) expect(x).toMatchObject({ state: 'QUEUED', attempts: 0 });
      expect((await (await f.backend.queues.open(f.job, TYPE)).depth()).visible).toBe(3);
    });
  }

  it('a first SIGTERM lets every running slot finish and takes no other task', async () => {
    const f = await t.job('slots-drain', [1, 2, 3].map((n) => `sleep 1; ${writesResult(String(n))}`), { slots: { [TYPE]: 2 } });
    const w = await t.start(f, 'w-drain', { realTime: true });
    await until('two tasks running', async () => (await f.backend.status.listTasks(f.job, { states: ['RUNNING'] })).length === 2);
    w.agent.drain();
    const r = await w.done;
    expect(r).toMatchObject({ reason: 'drained', tasksRun: 2 });
    const states = (await f.backend.status.listTasks(f.job)).map((x) => x.state);
    expect(states.filter((s) => s === 'SUCCEEDED')).toHaveLength(2);
    expect(states.filter((s) => s === 'QUEUED')).toHaveLength(1);
  });
});
