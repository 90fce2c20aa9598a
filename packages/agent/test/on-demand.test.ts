/**
 * The agent's side of the on-demand fallback: moving a task interrupted once too often to the
 * type's on-demand queue (on-demand.ts), and the idle rule seeing each pool's workers and tasks
 * apart (idle-leave.ts), so that a Spot worker never waits for, nor re-sends, an on-demand task.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, type Fleet, type InstanceRecord, type JobRecord, type Pool, type TaskQueue, type TaskRecord } from '@gq/common';
import { moveToOnDemand, raiseOnDemand } from '../src/on-demand.js';
import { isKeeper, readIdleFacts, type IdleReads } from '../src/idle-leave.js';
import type { AgentDeps } from '../src/deps.js';

const log = createLogger({ level: 'silent' });
const job = { name: 'j', spotInterruptions: 2 } as JobRecord;

function fakeQueue(pool: Pool, calls: string[], failSend = false): TaskQueue {
  return {
    job: 'j',
    instanceType: 'c5.large',
    pool,
    send: async (tasks) => {
      if (failSend) throw new Error('unreachable');
      calls.push(`${pool} send ${tasks.join(',')}`);
    },
    delete: async (receipt) => void calls.push(`${pool} delete ${receipt}`),
    depth: async () => ({ visible: 2, inFlight: 1, delayed: 0 }),
  } as TaskQueue;
}

type Raise = NonNullable<Fleet['raiseCapacity']>;

function deps(calls: string[], o: { pool?: 'on-demand'; failSend?: boolean; raise?: Raise | null } = {}): AgentDeps {
  const raise: Raise = async (j, type, pending, slots, pool) => (calls.push(`raise ${j} ${type} ${pool} pending ${pending} slots ${slots}`), 2);
  return {
    queue: fakeQueue(o.pool ?? 'main', calls),
    pool: o.pool,
    backend: {
      queues: { open: async (_job: string, _type: string, pool: Pool = 'main') => fakeQueue(pool, calls, o.failSend) },
      fleet: o.raise === null ? {} : { raiseCapacity: o.raise ?? raise },
    },
  } as unknown as AgentDeps;
}

const task = (interruptions?: number) => ({ task: 5, instanceType: 'c5.large', ...(interruptions ? { interruptions } : {}) }) as TaskRecord;

describe('moveToOnDemand', () => {
  it('sends the task to the on-demand queue, deletes the Spot message, then raises the on-demand group, at the limit', async () => {
    const calls: string[] = [];
    // Claimed with 1 interruption; this one makes 2, the job's limit.
    expect(await moveToOnDemand(deps(calls), log, { ...job, slots: { 'c5.large': 2 } }, task(1), 'r1')).toBe(true);
    // The od queue's backlog (2 visible + 1 in flight) and the type's slots.
    expect(calls).toEqual(['on-demand send 5', 'main delete r1', 'raise j c5.large on-demand pending 3 slots 2']);
  });
  it('moves the task even when the raise fails, hangs, or the fleet cannot raise (the next gq command does)', async () => {
    const calls: string[] = [];
    const failing: Raise = async () => {
      throw Object.assign(new Error('denied'), { name: 'AccessDenied' });
    };
    expect(await moveToOnDemand(deps(calls, { raise: failing }), log, job, task(1), 'r1')).toBe(true);
    expect(await moveToOnDemand(deps(calls, { raise: null }), log, job, task(1), 'r2')).toBe(true);
    const od = fakeQueue('on-demand', calls);
    let aborted = false;
    const hanging: Raise = (_j, _t, _p, _s, _pool, signal) => new Promise(() => signal?.addEventListener('abort', () => (aborted = true)));
    const t0 = Date.now();
    await raiseOnDemand(deps(calls, { raise: hanging }), log, job, 'c5.large', od, 50);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(aborted).toBe(true);
    expect(calls).toEqual(['on-demand send 5', 'main delete r1', 'on-demand send 5', 'main delete r2']);
  });
  it('leaves the task to the usual give-back below the limit, on an on-demand worker, and without a limit', async () => {
    const calls: string[] = [];
    expect(await moveToOnDemand(deps(calls), log, job, task(), 'r1')).toBe(false);
    expect(await moveToOnDemand(deps(calls, { pool: 'on-demand' }), log, job, task(4), 'r1')).toBe(false);
    expect(await moveToOnDemand(deps(calls), log, { ...job, spotInterruptions: undefined }, task(9), 'r1')).toBe(false);
    expect(calls).toEqual([]);
  });
  it('gives the task back to Spot when the on-demand queue cannot be reached', async () => {
    const calls: string[] = [];
    expect(await moveToOnDemand(deps(calls, { failSend: true }), log, job, task(1), 'r1')).toBe(false);
    expect(calls).toEqual([]); // the Spot message is kept: the caller releases it
  });
});

describe('the idle rule, per pool', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const rec = (instance: string, state: InstanceRecord['state'], pool?: 'on-demand'): InstanceRecord => ({
    job: 'j', instance, instanceType: 'c5.large', state, heartbeatAt: new Date(now - 1000).toISOString(), ...(pool ? { pool } : {}),
  });
  it('counts only the workers of its own pool as the others of its type', () => {
    const odBusy = [rec('i-a', 'BUSY', 'on-demand')];
    // A busy on-demand worker does not take back a Spot task: the Spot worker stays keeper.
    expect(isKeeper({ self: 'i-b', instanceType: 'c5.large', instances: odBusy, now })).toBe(true);
    expect(isKeeper({ self: 'i-b', instanceType: 'c5.large', pool: 'on-demand', instances: odBusy, now })).toBe(false);
  });
  it('reads the tasks of its pool even when the job has one type (the counts hold both pools)', async () => {
    const calls: string[] = [];
    const r: IdleReads = {
      depth: async () => (calls.push('depth'), { visible: 0, inFlight: 0, delayed: 0 }),
      job: async () => (calls.push('job'), { counts: { queued: 1, running: 0 }, instanceTypes: { 'c5.large': 1 }, spotInterruptions: 2 }),
      tasksOfType: async () => (calls.push('tasks'), []),
      instances: async () => (calls.push('instances'), []),
    };
    const { facts } = await readIdleFacts(r, 'i-b', 'c5.large', () => now);
    expect(calls).toEqual(['depth', 'job', 'tasks']);
    expect(facts.queued).toBe(0);
  });
});
