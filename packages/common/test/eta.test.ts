import { describe, expect, it } from 'vitest';
import { jobEta, secondsToFinish, type EtaInput, type InstanceRecord, type TypeWork } from '../src/index.js';

const T0 = Date.parse('2026-01-01T17:00:00Z');

function inst(over: Partial<InstanceRecord> & { instance: string }): InstanceRecord {
  return { job: 'j', instanceType: 'c5.large', state: 'BUSY', heartbeatAt: new Date(T0).toISOString(), ...over };
}
const none: TypeWork = { queued: 0, running: [] };

function input(over: Partial<EtaInput>): EtaInput {
  return { instances: [], now: T0, types: ['c5.large'], work: () => none, slots: () => 1, ...over };
}

describe('secondsToFinish', () => {
  it('spreads the work left over the slots', () => {
    // 8 queued of 40 s on 4 slots, none running: 2 waves of 40 s.
    expect(secondsToFinish(8, [], 40, 4)).toBe(80);
  });
  it('counts what each running task still has left of the mean, never less than the longest', () => {
    expect(secondsToFinish(0, [10, 35], 40, 4)).toBe(30);
    // A task running longer than the mean has nothing left by the estimate.
    expect(secondsToFinish(0, [90], 40, 1)).toBe(0);
  });
  it('takes at least a whole task for a queued one, after the first slot that frees', () => {
    // One queued, one slot busy with 30 s left: 30 + 40.
    expect(secondsToFinish(1, [10], 40, 1)).toBe(70);
    // One queued and a free slot: one task's time, not a fraction of it.
    expect(secondsToFinish(1, [], 40, 8)).toBe(40);
  });
});

describe('jobEta', () => {
  it('is from the finished attempts, the queue and the slots of the live workers', () => {
    const instances = [
      inst({ instance: 'i-a', tasksRun: 200, taskSeconds: 8000 }),
      inst({ instance: 'i-b', state: 'IDLE', tasksRun: 112, taskSeconds: 4480 }),
      // Gone: its finished tasks count for the mean, not its slots.
      inst({ instance: 'i-c', state: 'STOPPED', endedAt: new Date(T0).toISOString(), tasksRun: 0, taskSeconds: 0 }),
    ];
    const { eta } = jobEta(input({ instances, work: () => ({ queued: 160, running: [] }), slots: () => 4 }));
    // 312 tasks, 40 s each; 2 workers × 4 slots = 8; 160 × 40 / 8 = 800 s.
    expect(eta).toMatchObject({ seconds: 800, finishedTasks: 312, meanTaskSeconds: 40, slots: 8 });
    expect(eta!.at).toBe('2026-01-01T17:13:20.000Z');
  });

  it('is unknown before any task has finished', () => {
    const r = jobEta(input({ instances: [inst({ instance: 'i-a' })], work: () => ({ queued: 3, running: [5] }) }));
    expect(r.eta).toBeUndefined();
    expect(r.perType[0]).toMatchObject({ known: false, why: 'no-task-finished', tasksLeft: 4 });
  });

  it('is unknown when no worker is left to run the tasks (no slot at all)', () => {
    const gone = inst({ instance: 'i-a', state: 'STOPPED', endedAt: new Date(T0).toISOString(), tasksRun: 5, taskSeconds: 50 });
    const r = jobEta(input({ instances: [gone], work: () => ({ queued: 3, running: [] }) }));
    expect(r.eta).toBeUndefined();
    expect(r.perType[0]).toMatchObject({ known: false, why: 'no-worker' });
  });

  it('counts idle and starting workers as slots: no slot busy still gives an ETA', () => {
    const instances = [inst({ instance: 'i-a', state: 'IDLE', tasksRun: 2, taskSeconds: 20 }), inst({ instance: 'i-b', state: 'BOOTING' })];
    const { eta } = jobEta(input({ instances, work: () => ({ queued: 4, running: [] }) }));
    expect(eta).toMatchObject({ seconds: 20, slots: 2 });
  });

  it('is 0 (now) when every task is done, whatever the records', () => {
    const { eta } = jobEta(input({ instances: [inst({ instance: 'i-a', state: 'STOPPED', tasksRun: 3, taskSeconds: 9 })] }));
    expect(eta).toMatchObject({ seconds: 0, at: new Date(T0).toISOString() });
    expect(jobEta(input({})).eta).toMatchObject({ seconds: 0 });
  });

  it('is the max over instance types, each with its own workers and slots per instance', () => {
    const instances = [
      // c5.large: 1 worker × 4 slots, 10 s tasks, 8 queued: 20 s.
      inst({ instance: 'i-a', tasksRun: 4, taskSeconds: 40 }),
      // m5.large: 2 workers × 1 slot, 60 s tasks, 3 queued, one running 20 s: (180 + 40) / 2 = 110 s.
      inst({ instance: 'i-b', instanceType: 'm5.large', tasksRun: 1, taskSeconds: 60 }),
      inst({ instance: 'i-c', instanceType: 'm5.large', state: 'IDLE', tasksRun: 1, taskSeconds: 60 }),
    ];
    const work = (t: string): TypeWork => (t === 'c5.large' ? { queued: 8, running: [] } : { queued: 3, running: [20] });
    const slots = (t: string) => (t === 'c5.large' ? 4 : 1);
    const { eta } = jobEta(input({ instances, types: ['c5.large', 'm5.large'], work, slots }));
    expect(eta).toMatchObject({ seconds: 110, finishedTasks: 6, slots: 6 });
    expect(eta!.meanTaskSeconds).toBeCloseTo(160 / 6);
    expect(eta!.perType.map((t) => (t.known ? t.seconds : -1))).toEqual([20, 110]);
  });

  it('is unknown when one type cannot be estimated, even if another can', () => {
    const instances = [inst({ instance: 'i-a', tasksRun: 4, taskSeconds: 40 }), inst({ instance: 'i-b', instanceType: 'm5.large' })];
    const work = (): TypeWork => ({ queued: 2, running: [] });
    expect(jobEta(input({ instances, types: ['c5.large', 'm5.large'], work })).eta).toBeUndefined();
  });
});
