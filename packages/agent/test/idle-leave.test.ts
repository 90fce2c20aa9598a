import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from '@gq/common';
import { decideIdle, FIRST_IDLE_WAIT_S, isKeeper, leavesEarly, missingMessages, readIdleFacts, receiveWaitSeconds, type IdleFacts, type IdleReads } from '../src/idle-leave.js';

const now = Date.parse('2026-01-01T12:00:00Z');
const empty = { visible: 0, inFlight: 0, delayed: 0 };

function worker(instance: string, state: InstanceRecord['state'], agoMs = 10_000, instanceType = 'c5.large'): InstanceRecord {
  return { job: 'j', instance, instanceType, state, heartbeatAt: new Date(now - agoMs).toISOString() };
}

function facts(over: Partial<IdleFacts> = {}): IdleFacts {
  return { self: 'i-b', instanceType: 'c5.large', depth: empty, running: 0, queued: 0, instances: [], now, ...over };
}

describe('decideIdle (may an idle worker leave?)', () => {
  it('stays while messages are visible, whoever else is there', () => {
    expect(decideIdle(facts({ depth: { ...empty, visible: 3 }, instances: [worker('i-a', 'IDLE')] }))).toEqual({ action: 'stay', why: 'visible' });
  });
  it('leaves when nothing of its type can come back', () => {
    expect(decideIdle(facts())).toEqual({ action: 'leave', why: 'nothing-can-come-back' });
  });
  it('the last worker stays while an attempt is in flight, delayed or running', () => {
    expect(decideIdle(facts({ depth: { ...empty, inFlight: 1 } }))).toEqual({ action: 'stay', why: 'keeper' });
    expect(decideIdle(facts({ depth: { ...empty, delayed: 1 }, queued: 1 }))).toEqual({ action: 'stay', why: 'keeper' });
    // Counts lag: a RUNNING task whose message the queue does not count yet.
    expect(decideIdle(facts({ running: 1 }))).toEqual({ action: 'stay', why: 'keeper' });
  });
  it('leaves when a live busy worker of its type is there to take the task back', () => {
    const f = facts({ depth: { ...empty, inFlight: 1 }, running: 1, instances: [worker('i-z', 'BUSY')] });
    expect(decideIdle(f)).toEqual({ action: 'leave', why: 'another-worker-stays' });
  });
  it('of two idle workers exactly one stays: the smaller instance id', () => {
    const instances = [worker('i-a', 'IDLE'), worker('i-b', 'IDLE')];
    const a = decideIdle(facts({ self: 'i-a', depth: { ...empty, inFlight: 1 }, instances }));
    const b = decideIdle(facts({ self: 'i-b', depth: { ...empty, inFlight: 1 }, instances }));
    expect([a.action, b.action]).toEqual(['stay', 'leave']);
  });
  it('does not count workers that are gone, failed to start, silent, or of another type', () => {
    const instances = [
      worker('i-a', 'STOPPED'),
      worker('i-0', 'INSTALL_FAILED'),
      worker('i-1', 'BUSY', 10 * 60_000), // heartbeat 10 minutes old: a lost worker
      worker('i-2', 'BUSY', 1000, 'm5.large'),
      worker('i-b', 'IDLE'), // itself
    ];
    expect(isKeeper({ self: 'i-b', instanceType: 'c5.large', instances, now })).toBe(true);
    expect(decideIdle(facts({ depth: { ...empty, inFlight: 1 }, instances }))).toEqual({ action: 'stay', why: 'keeper' });
  });
  it('a worker still installing with a smaller id is the keeper-to-be', () => {
    expect(isKeeper({ self: 'i-b', instanceType: 'c5.large', instances: [worker('i-a', 'INSTALLING')], now })).toBe(false);
  });
});

describe('leavesEarly (may an idle worker leave before its idle period is over?)', () => {
  it('yes when nothing can come back, or a busy worker of its type is there for what can', () => {
    expect(leavesEarly(facts())).toBe(true);
    // The last long task runs elsewhere: this worker would only wait out its idle period for it.
    expect(leavesEarly(facts({ depth: { ...empty, inFlight: 1 }, running: 1, instances: [worker('i-z', 'BUSY')] }))).toBe(true);
  });
  it('no while a task of its type is QUEUED, visible or delayed (waiting may bring it one)', () => {
    const busy = [worker('i-z', 'BUSY')];
    expect(leavesEarly(facts({ queued: 1, depth: { ...empty, inFlight: 1 }, instances: busy }))).toBe(false);
    expect(leavesEarly(facts({ depth: { ...empty, visible: 1 }, instances: busy }))).toBe(false);
    expect(leavesEarly(facts({ depth: { ...empty, delayed: 1 }, instances: busy }))).toBe(false);
  });
  it('no for the keeper: it stays while a task can come back', () => {
    expect(leavesEarly(facts({ running: 1 }))).toBe(false);
    expect(leavesEarly(facts({ self: 'i-a', depth: { ...empty, inFlight: 1 }, instances: [worker('i-b', 'IDLE')] }))).toBe(false);
  });
});

describe('missingMessages (QUEUED tasks whose message SQS dropped)', () => {
  it('resends when tasks are QUEUED and the queue holds nothing for them', () => {
    expect(missingMessages({ depth: empty, queued: 2, running: 0 })).toBe(true);
    expect(decideIdle(facts({ queued: 2 }))).toEqual({ action: 'resend', why: 'queued-without-message' });
    // One running task holds the one message in flight; the QUEUED one has none.
    expect(missingMessages({ depth: { ...empty, inFlight: 1 }, queued: 1, running: 1 })).toBe(true);
  });
  it('does not resend while a message is visible, delayed, or in flight for the queued task', () => {
    expect(missingMessages({ depth: { ...empty, visible: 1 }, queued: 1, running: 0 })).toBe(false);
    expect(missingMessages({ depth: { ...empty, delayed: 1 }, queued: 1, running: 0 })).toBe(false);
    // A failed attempt given back with a retry delay: QUEUED, its message in flight.
    expect(missingMessages({ depth: { ...empty, inFlight: 1 }, queued: 1, running: 0 })).toBe(false);
    expect(missingMessages({ depth: empty, queued: 0, running: 0 })).toBe(false);
  });
  it('only the keeper resends', () => {
    expect(decideIdle(facts({ queued: 2, instances: [worker('i-a', 'IDLE')] }))).toEqual({ action: 'leave', why: 'another-worker-stays' });
  });
});

describe('readIdleFacts (reads only what the decision needs)', () => {
  function reads(over: Partial<{ depth: IdleFacts['depth']; queued: number; running: number; types: string[] }> = {}) {
    const calls: string[] = [];
    const r: IdleReads = {
      depth: async () => (calls.push('depth'), over.depth ?? empty),
      job: async () => (
        calls.push('job'),
        { counts: { queued: over.queued ?? 0, running: over.running ?? 0 }, instanceTypes: Object.fromEntries((over.types ?? ['c5.large']).map((t) => [t, 1])) }
      ),
      tasksOfType: async () => (calls.push('tasks'), [{ task: 4, state: 'QUEUED' }, { task: 7, state: 'RUNNING' }]),
      instances: async () => (calls.push('instances'), [worker('i-a', 'IDLE')]),
    };
    return { r, calls };
  }
  it('visible messages: the queue depth only', async () => {
    const { r, calls } = reads({ depth: { ...empty, visible: 1 } });
    await readIdleFacts(r, 'i-b', 'c5.large', () => now);
    expect(calls).toEqual(['depth']);
  });
  it('nothing left: depth and job, no worker records', async () => {
    const { r, calls } = reads();
    const { facts: f } = await readIdleFacts(r, 'i-b', 'c5.large', () => now);
    expect(calls).toEqual(['depth', 'job']);
    expect(decideIdle(f).action).toBe('leave');
  });
  it('one type: counts from the job item; several: the tasks of this type', async () => {
    const one = reads({ running: 3 });
    const a = await readIdleFacts(one.r, 'i-b', 'c5.large', () => now);
    expect(one.calls).toEqual(['depth', 'job', 'instances']);
    expect(a.facts.running).toBe(3);
    const two = reads({ running: 3, queued: 5, types: ['c5.large', 'm5.large'] });
    const b = await readIdleFacts(two.r, 'i-b', 'c5.large', () => now);
    expect(two.calls).toEqual(['depth', 'job', 'tasks', 'instances']);
    expect([b.facts.queued, b.facts.running, b.queuedTasks]).toEqual([1, 1, [4]]);
  });
});

describe('receiveWaitSeconds (how long a receive waits)', () => {
  it('is short at the first receive of an idle stretch (the early look comes soon), then what is left of the idle period, at most 20 s', () => {
    expect(receiveWaitSeconds({ busy: 0, idleSeconds: 600, idleLeftMs: 600_000, looked: false })).toBe(FIRST_IDLE_WAIT_S);
    expect(receiveWaitSeconds({ busy: 0, idleSeconds: 600, idleLeftMs: 600_000, looked: true })).toBe(20);
    expect(receiveWaitSeconds({ busy: 0, idleSeconds: 600, idleLeftMs: 4_200, looked: true })).toBe(5);
    expect(receiveWaitSeconds({ busy: 0, idleSeconds: 600, idleLeftMs: -5, looked: true })).toBe(1);
    // With busy slots: no longer than the idle period, whatever the look.
    expect(receiveWaitSeconds({ busy: 1, idleSeconds: 5, idleLeftMs: 0, looked: false })).toBe(5);
    expect(receiveWaitSeconds({ busy: 2, idleSeconds: 600, idleLeftMs: 0, looked: false })).toBe(20);
  });
});
