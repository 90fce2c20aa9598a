/**
 * The agent loop's idle paths, in this process on the local backend and a fake clock: a worker
 * leaves once the queue stayed empty for the idle period; it stays while a task of its type can
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
 * for 300 s, its record BUSY with a fresh heartbeat. Then `instance` runs until it leaves.
 */
async function heldElsewhere(label: string, idleSeconds: number, instance: string) {
  const f = await t.job(label, [writesResult('1')], { idleSeconds });
  const q = await f.backend.queues.open(f.job, TYPE);
  expect(await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 300 })).toHaveLength(1);
  expect((await f.backend.status.claim(f.job, 1, 'w-held', 300_000)).kind).toBe('claimed');
  const t0 = t.clock.now();
  return { f, t0, r: await (await t.start(f, instance)).done };
}

describe('agent loop: idle (fake clock)', () => {
  it('leaves once the queue stayed empty for the idle period (600 s), not before', async () => {
    const f = await t.job('idle', [writesResult('1')], { idleSeconds: 600 });
    const r = await (await t.start(f, 'w-idle')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    const done = await task(f, 1);
    expect(done.state).toBe('SUCCEEDED');
    const idle = r.leftAt - at(done.finishedAt);
    expect(idle).toBeGreaterThanOrEqual(600_000);
    expect(idle).toBeLessThan(600_000 + 21_000); // one long poll at most past the period
    expect((await f.backend.status.listInstances(f.job)).map((i) => i.state)).toEqual(['STOPPED']);
  });

  it('work that arrives starts the idle period again', async () => {
    const f = await t.job('reset', [writesResult('1'), writesResult('2')], { idleSeconds: 600 });
    const q = await f.backend.queues.open(f.job, TYPE);
    await q.purge();
    await q.send([1]);
    // Task 2's message comes 400 s in, before the worker's idle period is over.
    t.clock.at(t.clock.now() + 400_000, () => void q.send([2]));
    const r = await (await t.start(f, 'w-reset')).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 2, reason: 'idle' });
    const [first, second] = [await task(f, 1), await task(f, 2)];
    expect([first.state, second.state]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(at(second.startedAt) - at(first.finishedAt)).toBeGreaterThanOrEqual(400_000);
    expect(at(second.startedAt) - at(first.finishedAt)).toBeLessThan(402_000); // taken when it came
    // The full period after the second task, not what was left of the first one's.
    expect(r.leftAt - at(second.finishedAt)).toBeGreaterThanOrEqual(600_000);
  });

  it('stays while a task of its type can come back (held by a worker that went silent), and runs it when it does', async () => {
    const { f, t0, r } = await heldElsewhere('keeper', 240, 'w-keeper');
    // At 240 s the holder's heartbeat is 4 minutes old (not live): this worker is the keeper and
    // stays; at 300 s the message comes back with the lease run out, and it takes the task over.
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    const over = await task(f, 1);
    expect(over).toMatchObject({ state: 'SUCCEEDED', attempts: 2 }); // the second attempt: this worker's
    expect(at(over.startedAt) - t0).toBeGreaterThanOrEqual(300_000);
    expect(r.leftAt - at(over.finishedAt)).toBeGreaterThanOrEqual(240_000);
  });

  it('leaves after the idle period when a live busy worker of its type holds the task that could come back', async () => {
    // A smaller id than the holder's: it leaves because the holder is busy, not by the id rule.
    const { f, t0, r } = await heldElsewhere('busy-other', 60, 'w-a-leaves');
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 0, reason: 'idle' });
    expect(r.leftAt - t0).toBeGreaterThanOrEqual(60_000);
    expect(r.leftAt - t0).toBeLessThan(62_000);
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
