/**
 * The attempt history (TaskRecord.history) every StatusStore records: registered inside
 * statusContract's suite, so both backends run the same cases on their own store.
 */
import { expect, it } from 'vitest';
import type { StatusStore } from '../../src/ports.js';
import { MAX_ATTEMPT_HISTORY, type JobSpec, type TaskRecord } from '../../src/job/model.js';
import { sleep } from './util.js';

const WHERE = { instanceType: 'c5.large', lifecycle: 'spot' } as const;
const fail = { kind: 'failed', exitCode: 3, error: 'exit 3', retryable: true } as const;

/** [instance, outcome, exitCode] of each entry, oldest first. */
function entries(t: TaskRecord | undefined): unknown[] {
  return (t?.history ?? []).map((e) => [e.instance, e.outcome, e.exitCode]);
}

export function historyContract(store: () => StatusStore, job: (tag: string, n: number, over?: Partial<JobSpec>) => Promise<string>): void {
  it('history: one entry per claim, with where it ran, closed by its outcome', async () => {
    const st = store();
    const name = await job('hist', 1);
    const before = Date.now();
    await st.claim(name, 1, 'i-a', 60_000, WHERE);
    const open = (await st.getTask(name, 1))!.history!;
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ instance: 'i-a', ...WHERE });
    expect(open[0]!.outcome).toBeUndefined();
    expect(Date.parse(open[0]!.startedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(await st.heartbeat(name, 1, 'i-a', 60_000)).toBe('ok');
    await st.complete(name, 1, 'i-a', fail);
    await st.claim(name, 1, 'i-b', 60_000); // a claimer that says nothing of where it runs
    await st.complete(name, 1, 'i-b', { kind: 'released', reason: 'spot', interrupted: true });
    await st.claim(name, 1, 'i-c', 60_000, { instanceType: 'c5.large', lifecycle: 'on-demand' });
    await st.complete(name, 1, 'i-c', { kind: 'succeeded', exitCode: 0 });
    const t = await st.getTask(name, 1);
    expect(entries(t)).toEqual([
      ['i-a', 'failed', 3],
      ['i-b', 'interrupted', undefined],
      ['i-c', 'succeeded', 0],
    ]);
    expect(t!.history![1]!.lifecycle).toBeUndefined();
    expect(t!.history![2]!.lifecycle).toBe('on-demand');
    for (const e of t!.history!) expect(Date.parse(e.endedAt!)).toBeGreaterThanOrEqual(Date.parse(e.startedAt));
    // The pages that gq status and gq report read hold it too.
    const paged: TaskRecord[] = [];
    for await (const page of st.taskPages(name)) paged.push(...page);
    expect(entries(paged[0])).toEqual(entries(t));
  });

  it('history: a lease taken over is closed as lost; a dead letter closes it too', async () => {
    const st = store();
    const name = await job('hist-lost', 2);
    for (const n of [1, 2]) await st.claim(name, n, 'i-a', 300, WHERE);
    await sleep(500);
    await st.claim(name, 1, 'i-b', 60_000, WHERE);
    expect(await st.failUnrun(name, 2, 'its message went to the dead-letter queue')).toBe(true);
    const t1 = await st.getTask(name, 1);
    expect(entries(t1)).toEqual([
      ['i-a', 'lost', undefined],
      ['i-b', undefined, undefined],
    ]);
    // Lost when its lease ran out, not when it was noticed.
    const lost = t1!.history![0]!;
    expect(Date.parse(lost.endedAt!) - Date.parse(lost.startedAt)).toBeLessThanOrEqual(400);
    expect(entries(await st.getTask(name, 2))).toEqual([['i-a', 'lost', undefined]]);
  });

  it('history: a cancelled attempt says so', async () => {
    const st = store();
    const name = await job('hist-cancel', 1);
    await st.claim(name, 1, 'i-a', 60_000, WHERE);
    expect(await st.cancel(name)).toEqual({ cancelled: 0, stopping: 1 });
    await st.complete(name, 1, 'i-a', { kind: 'cancelled' });
    expect(entries(await st.getTask(name, 1))).toEqual([['i-a', 'cancelled', undefined]]);
  });

  it(`history: at most ${MAX_ATTEMPT_HISTORY} entries, the newest`, async () => {
    const st = store();
    const name = await job('hist-cap', 1);
    for (let i = 0; i < MAX_ATTEMPT_HISTORY + 2; i++) {
      await st.claim(name, 1, `i-${i}`, 60_000, WHERE);
      await st.complete(name, 1, `i-${i}`, { kind: 'released', reason: 'agent stopped' });
    }
    const h = (await st.getTask(name, 1))!.history!;
    expect(h).toHaveLength(MAX_ATTEMPT_HISTORY);
    expect(h[0]!.instance).toBe('i-2');
    expect(h.every((e) => e.outcome === 'released')).toBe(true);
  });
}
