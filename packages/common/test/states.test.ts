import { describe, expect, it } from 'vitest';
import {
  FINAL_STATES,
  TASK_EVENTS,
  TASK_STATES,
  countKey,
  counterDelta,
  emptyCounts,
  isFinal,
  nextState,
  sourcesOf,
  type Counts,
  type TaskEvent,
  type TaskState,
} from '../src/job/states.js';

/** The whole transition table: event → from → to. Anything missing is illegal. */
const LEGAL: Record<TaskEvent, Partial<Record<TaskState, TaskState>>> = {
  claim: { QUEUED: 'RUNNING' },
  takeover: { RUNNING: 'RUNNING' },
  succeed: { RUNNING: 'SUCCEEDED' },
  fail: { RUNNING: 'FAILED', QUEUED: 'FAILED' },
  retry: { RUNNING: 'QUEUED' },
  release: { RUNNING: 'QUEUED' },
  cancel: { QUEUED: 'CANCELLED', RUNNING: 'CANCELLED' },
  resubmit: { FAILED: 'QUEUED', CANCELLED: 'QUEUED' },
};

const cases = TASK_EVENTS.flatMap((event) => TASK_STATES.map((from) => ({ event, from, to: LEGAL[event][from] })));

describe('task states', () => {
  it('has five states, three of them final', () => {
    expect([...TASK_STATES]).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']);
    expect([...FINAL_STATES].sort()).toEqual(['CANCELLED', 'FAILED', 'SUCCEEDED']);
    for (const s of TASK_STATES) expect(isFinal(s)).toBe(FINAL_STATES.has(s));
    expect(isFinal('QUEUED')).toBe(false);
    expect(isFinal('RUNNING')).toBe(false);
  });

  it('has eight events', () => {
    expect([...TASK_EVENTS]).toEqual(['claim', 'takeover', 'succeed', 'fail', 'retry', 'release', 'cancel', 'resubmit']);
  });

  it.each(cases.filter((c) => c.to))('$event: $from → $to', ({ event, from, to }) => {
    expect(nextState(from, event)).toBe(to);
  });

  it.each(cases.filter((c) => !c.to))('$event from $from is illegal', ({ event, from }) => {
    expect(nextState(from, event)).toBeUndefined();
  });

  it('never leaves SUCCEEDED, and leaves FAILED and CANCELLED only by resubmit', () => {
    for (const event of TASK_EVENTS) {
      expect(nextState('SUCCEEDED', event)).toBeUndefined();
      if (event !== 'resubmit') {
        expect(nextState('FAILED', event)).toBeUndefined();
        expect(nextState('CANCELLED', event)).toBeUndefined();
      }
    }
  });

  it.each(TASK_EVENTS)('sourcesOf(%s) lists the states it is legal from', (event) => {
    const expected = TASK_STATES.filter((s) => LEGAL[event][s] !== undefined);
    expect([...sourcesOf(event)].sort()).toEqual([...expected].sort());
  });
});

describe('counters', () => {
  it('maps states to lower-case counter keys', () => {
    expect(TASK_STATES.map(countKey)).toEqual(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
  });

  it('starts at zero, with a fresh object each time', () => {
    const a = emptyCounts();
    expect(a).toEqual({ queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
    a.queued = 5;
    expect(emptyCounts().queued).toBe(0);
  });

  it('moves one task from the old state to the new', () => {
    expect(counterDelta('QUEUED', 'RUNNING')).toEqual({ queued: -1, running: 1 });
    expect(counterDelta('RUNNING', 'SUCCEEDED')).toEqual({ running: -1, succeeded: 1 });
    expect(counterDelta('RUNNING', 'QUEUED')).toEqual({ running: -1, queued: 1 });
    expect(counterDelta('FAILED', 'QUEUED')).toEqual({ failed: -1, queued: 1 });
  });

  it('changes nothing when the state stays (takeover)', () => {
    for (const s of TASK_STATES) expect(counterDelta(s, s)).toEqual({});
  });

  it.each(cases.filter((c) => c.to))('the $event delta from $from sums to zero', ({ from, to }) => {
    const delta = counterDelta(from, to as TaskState);
    expect(Object.values(delta).reduce((a, b) => a + (b ?? 0), 0)).toBe(0);
  });

  it('keeps the counters equal to the tally of states over long random walks', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const states: TaskState[] = Array.from({ length: 50 }, () => 'QUEUED');
    const counts: Counts = { ...emptyCounts(), queued: states.length };
    for (let step = 0; step < 20_000; step++) {
      const i = rnd(states.length);
      const from = states[i] as TaskState;
      const event = TASK_EVENTS[rnd(TASK_EVENTS.length)] as TaskEvent;
      const to = nextState(from, event);
      if (!to) continue;
      for (const [k, v] of Object.entries(counterDelta(from, to))) counts[k as keyof Counts] += v ?? 0;
      states[i] = to;
    }
    const tally = emptyCounts();
    for (const s of states) tally[countKey(s)]++;
    expect(counts).toEqual(tally);
  });
});
