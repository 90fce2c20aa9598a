import { describe, expect, it } from 'vitest';
import { MAX_ATTEMPT_HISTORY, type AttemptRecord, type JobRecord, type TaskRecord } from '../src/job/model.js';
import { attemptOutcome, closeAttempt, completeAttempt, loseAttempt, openAttempt } from '../src/job/history.js';
import { decideCancel, decideClaim, decideComplete, decideFailUnrun, decideResubmit, newTaskRecord } from '../src/job/transitions.js';
import { emptyCounts } from '../src/job/states.js';
import { makeSpec } from './contract/status.contract.js';

const T0 = Date.parse('2025-01-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function job(over: Partial<JobRecord> = {}): JobRecord {
  return { ...makeSpec('hist-ab12', 1, { createdAt: iso(T0) }), counts: emptyCounts(), cancelRequested: false, updatedAt: iso(T0), ...over };
}

const fresh = (): TaskRecord => newTaskRecord('hist-ab12', { task: 1, instanceType: 't3.micro', command: 'true' }, T0);

function claimed(t: TaskRecord, instance: string, now: number, j = job()): TaskRecord {
  const d = decideClaim(t, j, instance, now, 60_000, { instanceType: 'c5.large', lifecycle: 'spot' });
  if (d.result.kind !== 'claimed') throw new Error(`not claimed: ${d.result.kind}`);
  return d.write!;
}

describe('attempt history (pure)', () => {
  it('opens an entry with where it runs, and no undefined field', () => {
    const h = openAttempt(undefined, 'i-a', T0, { instanceType: 'c5.large', lifecycle: 'spot' });
    expect(h).toEqual([{ instance: 'i-a', instanceType: 'c5.large', lifecycle: 'spot', startedAt: iso(T0) }]);
    const bare = openAttempt(undefined, 'w-1', T0);
    expect(Object.keys(bare[0]!)).toEqual(['instance', 'startedAt']);
  });

  it('closes only the open entry, with outcome, exit code and end', () => {
    const h = openAttempt(undefined, 'i-a', T0);
    const c = closeAttempt(h, 'failed', T0 + 5000, 3)!;
    expect(c).toEqual([{ instance: 'i-a', startedAt: iso(T0), endedAt: iso(T0 + 5000), outcome: 'failed', exitCode: 3 }]);
    // Nothing open: the same list.
    expect(closeAttempt(c, 'succeeded', T0 + 9000)).toBe(c);
    expect(closeAttempt(undefined, 'succeeded', T0)).toBeUndefined();
    expect(h[0]!.outcome).toBeUndefined(); // not changed in place
  });

  it('a lost attempt ends when its lease ran out, never after now, never before it started', () => {
    const h = openAttempt(undefined, 'i-a', T0);
    expect(loseAttempt(h, T0 + 60_000, T0 + 500_000)![0]).toMatchObject({ outcome: 'lost', endedAt: iso(T0 + 60_000) });
    expect(loseAttempt(h, T0 + 60_000, T0 + 1000)![0]!.endedAt).toBe(iso(T0 + 1000));
    expect(loseAttempt(h, T0 - 5, T0 + 1000)![0]!.endedAt).toBe(iso(T0));
  });

  it('a claim over an open entry closes it as lost first', () => {
    const h = openAttempt(openAttempt(undefined, 'i-a', T0), 'i-b', T0 + 120_000, {}, T0 + 60_000);
    expect(h.map((e) => [e.instance, e.outcome, e.endedAt])).toEqual([
      ['i-a', 'lost', iso(T0 + 60_000)],
      ['i-b', undefined, undefined],
    ]);
  });

  it(`keeps the newest ${MAX_ATTEMPT_HISTORY} entries`, () => {
    let h: AttemptRecord[] | undefined;
    for (let i = 0; i < MAX_ATTEMPT_HISTORY + 7; i++) h = closeAttempt(openAttempt(h, `i-${i}`, T0 + i * 1000), 'released', T0 + i * 1000 + 500);
    expect(h).toHaveLength(MAX_ATTEMPT_HISTORY);
    expect(h![0]!.instance).toBe('i-7');
    expect(h![MAX_ATTEMPT_HISTORY - 1]!.instance).toBe(`i-${MAX_ATTEMPT_HISTORY + 6}`);
  });

  it('maps every reported outcome', () => {
    expect(attemptOutcome({ kind: 'succeeded', exitCode: 0 })).toEqual({ outcome: 'succeeded', exitCode: 0 });
    expect(attemptOutcome({ kind: 'failed', exitCode: 2, error: 'x', retryable: true })).toEqual({ outcome: 'failed', exitCode: 2 });
    expect(attemptOutcome({ kind: 'failed', signal: 'SIGKILL', error: 'x', retryable: true, timedOut: true }).outcome).toBe('timeout');
    expect(attemptOutcome({ kind: 'released', reason: 'x', interrupted: true }).outcome).toBe('interrupted');
    expect(attemptOutcome({ kind: 'released', reason: 'x' }).outcome).toBe('released');
    expect(attemptOutcome({ kind: 'cancelled' }).outcome).toBe('cancelled');
    expect(completeAttempt(openAttempt(undefined, 'i-a', T0), { kind: 'cancelled' }, T0 + 1)![0]!.outcome).toBe('cancelled');
  });
});

describe('attempt history through the transitions', () => {
  it('claim, fail, retry elsewhere, succeed: two closed entries', () => {
    let t = claimed(fresh(), 'i-a', T0);
    expect(t.history).toEqual([{ instance: 'i-a', instanceType: 'c5.large', lifecycle: 'spot', startedAt: iso(T0) }]);
    t = decideComplete(t, job(), 'i-a', { kind: 'failed', exitCode: 1, error: 'exit 1', retryable: true }, T0 + 1000).write!;
    expect(t.state).toBe('QUEUED');
    t = claimed(t, 'i-b', T0 + 2000);
    t = decideComplete(t, job(), 'i-b', { kind: 'succeeded', exitCode: 0 }, T0 + 5000).write!;
    expect(t.history!.map((e) => [e.instance, e.outcome, e.exitCode, e.endedAt])).toEqual([
      ['i-a', 'failed', 1, iso(T0 + 1000)],
      ['i-b', 'succeeded', 0, iso(T0 + 5000)],
    ]);
  });

  it('an interrupted attempt is kept (uncharged) and a lost lease is closed by the next claim', () => {
    let t = claimed(fresh(), 'i-a', T0);
    t = decideComplete(t, job(), 'i-a', { kind: 'released', reason: 'spot', interrupted: true }, T0 + 1000).write!;
    t = claimed(t, 'i-b', T0 + 2000);
    t = claimed(t, 'i-c', T0 + 200_000); // i-b's lease ran out at T0 + 62 000
    expect(t.history!.map((e) => [e.instance, e.outcome, e.endedAt])).toEqual([
      ['i-a', 'interrupted', iso(T0 + 1000)],
      ['i-b', 'lost', iso(T0 + 62_000)],
      ['i-c', undefined, undefined],
    ]);
    expect(t.attempts).toBe(2);
  });

  it('a lost worker with no attempts left, a dead letter and a cancel each close the open entry as lost', () => {
    const one = job({ maxAttempts: 1 });
    const held = claimed(fresh(), 'i-a', T0, one);
    const exhausted = decideClaim(held, one, 'i-b', T0 + 100_000, 60_000);
    expect(exhausted.result.kind).toBe('exhausted');
    expect(exhausted.write!.history!.map((e) => e.outcome)).toEqual(['lost']);
    expect(decideFailUnrun(held, 'dead letter', T0 + 100_000).write!.history![0]!.outcome).toBe('lost');
    expect(decideCancel(held, T0 + 100_000).write!.history![0]!.outcome).toBe('lost');
    const cancelledAtClaim = decideClaim(held, job({ cancelRequested: true }), 'i-b', T0 + 100_000, 60_000);
    expect(cancelledAtClaim.write!.history![0]!.outcome).toBe('lost');
    // A live lease being asked to stop keeps its entry open until the worker reports.
    expect(decideCancel(held, T0 + 1000).write!.history![0]!.outcome).toBeUndefined();
  });

  it('a resubmitted task keeps its history and adds to it', () => {
    let t = claimed(fresh(), 'i-a', T0, job({ maxAttempts: 1 }));
    t = decideComplete(t, job({ maxAttempts: 1 }), 'i-a', { kind: 'failed', exitCode: 1, error: 'e', retryable: true }, T0 + 10).write!;
    expect(t.state).toBe('FAILED');
    t = decideResubmit(t, T0 + 20).write!;
    t = claimed(t, 'i-b', T0 + 30);
    expect(t.history!.map((e) => e.instance)).toEqual(['i-a', 'i-b']);
  });
});
