/**
 * The agent loop's idle paths, in this process on the local backend and a fake clock: a worker
 * leaves at once when nothing is left that it could run (nothing of its type waits, and what can
 * come back has another worker), else once the queue stayed empty for the idle period; it stays while a task of its type can
 * come back and no other worker of the type is there for it (the keeper rule, idle-leave.ts);
 * work that arrives starts the idle period again; the keeper gives a QUEUED task whose message is
 * gone a new one, and records FAILED a task whose message went to the dead-letter queue.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InProcess, TYPE, writesResult, type Fixture } from './in-process.js';

const t = new InProcess();
afterEach(() => t.cleanup());

const task = async (f: Fixture, n: number) => (await f.backend.status.getTask(f.job, n))!;
const at = (iso: string | undefined): number => Date.parse(iso!);

/**
 * A one-task job whose task another worker (w-held) took and holds: message in flight and lease
 * for 300 s, its record BUSY with a heartbeat of then. `silentMs` later (the holder's heartbeat
 * that old), `instance` starts and runs until it leaves.
 */
async function heldElsewhere(label: string, idleSeconds: number, instance: string, silentMs = 0) {
  const f = await t.job(label, [writesResult('1')], { idleSeconds });
  const q = await f.backend.queues.open(f.job, TYPE);
  expect(await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 300 })).toHaveLength(1);
  expect((await f.backend.status.claim(f.job, 1, 'w-held', 300_000)).kind).toBe('claimed');
  const t0 = t.clock.now();
  if (silentMs > 0) await t.clock.advance(silentMs);
  return { f, t0, r: await (await t.start(f, instance)).done };
}

describe('agent loop: idle (fake clock)', () => {
  it('leaves at once, not after the idle period, when the job has nothing left that it could run', async () => {
    const f = await t.job('idle', [writesResult('1')], { idleSeconds: 600 });
    const r = await (await t.start(f, 'w-idle')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    const done = await task(f, 1);
    expect(done.state).toBe('SUCCEEDED');
    const idle = r.leftAt - at(done.finishedAt);
    expect(idle).toBeGreaterThanOrEqual(1_000); // its first receive of the stretch (FIRST_IDLE_WAIT_S)
    expect(idle).toBeLessThan(3_000);
    expect((await f.backend.status.listInstances(f.job)).map((i) => i.state)).toEqual(['STOPPED']);
  });

  it('while a task is QUEUED, waits the idle period (600 s), not less, then leaves when the rule says so', async () => {
    // Task 2 is QUEUED, its message taken by a worker (w-late) that claims it 500 s in and beats.
    const f = await t.job('queued', [writesResult('1'), writesResult('2')], { idleSeconds: 600 });
    const q = await f.backend.queues.open(f.job, TYPE);
    await q.purge();
    await q.send([2]);
    expect((await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 3600 })).map((m) => m.task)).toEqual([2]);
    await q.send([1]);
    t.clock.at(t.clock.now() + 500_000, () => void f.backend.status.claim(f.job, 2, 'w-late', 3_600_000));
    const r = await (await t.start(f, 'w-wait')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    const idle = r.leftAt - at((await task(f, 1)).finishedAt);
    expect(idle).toBeGreaterThanOrEqual(600_000);
    expect(idle).toBeLessThan(600_000 + 21_000); // one long poll at most past the period
    expect(await task(f, 2)).toMatchObject({ state: 'RUNNING', instance: 'w-late' });
  });

  it('work that arrives starts the idle period again', async () => {
    const f = await t.job('reset', [writesResult('1'), writesResult('2'), writesResult('3')], { idleSeconds: 600 });
    const q = await f.backend.queues.open(f.job, TYPE);
    await q.purge();
    await q.send([1]);
    // Task 2's message comes 400 s in, before the worker's idle period is over.
    t.clock.at(t.clock.now() + 400_000, () => void q.send([2]));
    const r = await (await t.start(f, 'w-reset')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 3, reason: 'idle' });
    const [first, second] = [await task(f, 1), await task(f, 2)];
    expect([first.state, second.state]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(at(second.startedAt) - at(first.finishedAt)).toBeGreaterThanOrEqual(400_000);
    expect(at(second.startedAt) - at(first.finishedAt)).toBeLessThan(402_000); // taken when it came
    // The full period after the second task, not what was left of the first one's: task 3 is
    // QUEUED without a message (purged), so the worker waits the period, then sends it again.
    const third = await task(f, 3);
    expect(third.state).toBe('SUCCEEDED');
    expect(at(third.startedAt) - at(second.finishedAt)).toBeGreaterThanOrEqual(600_000);
  });

  it('stays past its idle period while a task of its type can come back (held by a worker that went silent), and runs it when it does', async () => {
    // Started when the holder's heartbeat is 190 s old (not live): this worker is the keeper; it
    // stays at its first look and at the end of its idle period (250 s); at 300 s the message
    // comes back with the lease run out, and it takes the task over.
    const { f, t0, r } = await heldElsewhere('keeper', 60, 'w-keeper', 190_000);
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    const over = await task(f, 1);
    expect(over).toMatchObject({ state: 'SUCCEEDED', attempts: 2 }); // the second attempt: this worker's
    expect(at(over.startedAt) - t0).toBeGreaterThanOrEqual(300_000);
    expect(r.leftAt - at(over.finishedAt)).toBeLessThan(3_000); // then nothing is left: it leaves at once
  });

  it('leaves at once when a live busy worker of its type holds the task that could come back', async () => {
    // A smaller id than the holder's: it leaves because the holder is busy, not by the id rule.
    const { f, t0, r } = await heldElsewhere('busy-other', 60, 'w-a-leaves');
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 0, reason: 'idle' });
    expect(r.leftAt - t0).toBeGreaterThanOrEqual(1_000); // its first receive (FIRST_IDLE_WAIT_S)
    expect(r.leftAt - t0).toBeLessThan(3_000);
    expect(await task(f, 1)).toMatchObject({ state: 'RUNNING', attempts: 1, instance: 'w-held' });
  });

  it('the keeper sends again the message of a QUEUED task that has none, and runs it', async () => {
    const f = await t.job('resend', [writesResult('1')], { idleSeconds: 60 });
    const q = await f.backend.queues.open(f.job, TYPE);
    await q.purge(); // as SQS drops a message after its retention period
    const t0 = t.clock.now();
    const r = await (await t.start(f, 'w-resend')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    const sent = await task(f, 1);
    expect(sent).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    expect(at(sent.startedAt) - t0).toBeGreaterThanOrEqual(60_000);
  });

  it('the keeper records FAILED, never sends again, a task whose message went to the dead-letter queue', async () => {
    const f = await t.job('dead', [writesResult('1')], { idleSeconds: 60 });
    const q = await f.backend.queues.open(f.job, TYPE);
    // Received ten times (the queue's limit) without finishing; the next receive dead-letters it.
    for (let i = 0; i < 10; i++) expect(await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 0 })).toHaveLength(1);
    const r = await (await t.start(f, 'w-dead')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 0, reason: 'idle' });
    expect(await q.deadLetters()).toEqual([1]);
    const failed = await task(f, 1);
    expect(failed).toMatchObject({ state: 'FAILED', attempts: 0 });
    expect(failed.error).toMatch(/dead-letter queue/);
    expect((await q.depth()).visible).toBe(0);
  });
});
