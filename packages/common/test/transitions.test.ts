import { describe, expect, it } from 'vitest';
import type { JobRecord, TaskRecord } from '../src/job/model.js';
import type { TaskOutcome } from '../src/ports.js';
import { countKey, emptyCounts, type Counts, type TaskState } from '../src/job/states.js';
import {
  decideFailUnrun,
  decideCancel,
  decideClaim,
  decideComplete,
  decideHeartbeat,
  decideResubmit,
  decideTag,
  newTaskRecord,
  type Decision,
} from '../src/job/transitions.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const ISO = new Date(NOW).toISOString();
const LEASE = 60_000;

function job(over: Partial<JobRecord> = {}): JobRecord {
  return {
    name: 'sweep-ab12',
    backend: 'local',
    createdAt: '2025-01-01T00:00:00.000Z',
    total: 3,
    instanceTypes: { 't3.micro': 3 },
    codeKey: 'bundles/abc.tar.gz',
    resultsPath: 'results.json',
    outputs: [],
    maxAttempts: 3,
    timeoutSeconds: 0,
    installTimeoutSeconds: 600,
    installAttempts: 2,
    visibilitySeconds: 60,
    idleSeconds: 60,
    counts: emptyCounts(),
    cancelRequested: false,
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...over,
  };
}

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    ...newTaskRecord('sweep-ab12', { task: 1, instanceType: 't3.micro', command: 'echo hi' }, NOW - 100_000),
    version: 4,
    ...over,
  };
}

/** A task RUNNING on `instance` with a lease until `leaseUntil`. */
function running(instance: string, leaseUntil: number, over: Partial<TaskRecord> = {}): TaskRecord {
  return task({ state: 'RUNNING', attempts: 1, instance, leaseUntil, startedAt: '2025-01-01T11:59:00.000Z', ...over });
}

function frozen<T>(x: T): T {
  return structuredClone(x);
}

/** Checks the things every write must do: one version up, and the input left alone. */
function expectWrite<R>(d: Decision<R>, before: TaskRecord, copy: TaskRecord): TaskRecord {
  expect(before).toEqual(copy);
  expect(d.write).toBeDefined();
  const w = d.write as TaskRecord;
  expect(w.version).toBe(before.version + 1);
  expect(w.job).toBe(before.job);
  expect(w.task).toBe(before.task);
  expect(w.command).toBe(before.command);
  return w;
}

function expectNoWrite<R>(d: Decision<R>): void {
  expect(d.write).toBeUndefined();
  expect(d.delta).toEqual({});
}

describe('newTaskRecord', () => {
  it('makes a QUEUED record with no attempts', () => {
    expect(newTaskRecord('j-abc', { task: 7, instanceType: 'c5.large', command: 'run 7' }, NOW)).toEqual({
      job: 'j-abc',
      task: 7,
      instanceType: 'c5.large',
      command: 'run 7',
      state: 'QUEUED',
      attempts: 0,
      tags: {},
      updatedAt: ISO,
      version: 0,
    });
  });
});

describe('decideClaim', () => {
  it('claims a QUEUED task: RUNNING, one more attempt, a lease', () => {
    const before = task({ attempts: 1 });
    const copy = frozen(before);
    const j = job();
    const d = decideClaim(before, j, 'i-1', NOW, LEASE);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'RUNNING', attempts: 2, instance: 'i-1', leaseUntil: NOW + LEASE, startedAt: ISO, updatedAt: ISO });
    expect(d.delta).toEqual({ queued: -1, running: 1 });
    expect(d.result).toEqual({ kind: 'claimed', task: w, job: j });
  });

  it('keeps the instance of the latest attempt after the attempt ends (lastInstance, for tasks.csv)', () => {
    const claimed = expectWrite(decideClaim(task({ attempts: 0 }), job(), 'i-7', NOW, LEASE), task({ attempts: 0 }), frozen(task({ attempts: 0 })));
    expect(claimed).toMatchObject({ instance: 'i-7', lastInstance: 'i-7' });
    const done = decideComplete(claimed, job(), 'i-7', { kind: 'succeeded', exitCode: 0, resultKey: 'k', logKey: 'l' }, NOW + 1);
    expect(done.write).toMatchObject({ state: 'SUCCEEDED', lastInstance: 'i-7' });
    expect(done.write!.instance).toBeUndefined();
  });

  it('says missing for no task', () => {
    const d = decideClaim(undefined, job(), 'i-1', NOW, LEASE);
    expectNoWrite(d);
    expect(d.result).toEqual({ kind: 'missing' });
  });

  it.each<TaskState>(['SUCCEEDED', 'FAILED', 'CANCELLED'])('says done for a %s task (duplicate delivery)', (state) => {
    const d = decideClaim(task({ state }), job(), 'i-1', NOW, LEASE);
    expectNoWrite(d);
    expect(d.result).toEqual({ kind: 'done', state });
  });

  it('says done for a final task even when a cancel is asked for', () => {
    const d = decideClaim(task({ state: 'SUCCEEDED', cancelRequested: true }), job({ cancelRequested: true }), 'i-1', NOW, LEASE);
    expectNoWrite(d);
    expect(d.result).toEqual({ kind: 'done', state: 'SUCCEEDED' });
  });

  it('leaves a live lease of another worker alone', () => {
    const d = decideClaim(running('i-1', NOW + 1), job(), 'i-2', NOW, LEASE);
    expectNoWrite(d);
    expect(d.result).toEqual({ kind: 'leased', leaseUntil: NOW + 1, runningSince: Date.parse('2025-01-01T11:59:00.000Z') });
  });

  it('takes over an expired lease with attempts left (the worker was lost)', () => {
    const before = running('i-1', NOW - 1, { attempts: 2 });
    const copy = frozen(before);
    const d = decideClaim(before, job({ maxAttempts: 3 }), 'i-2', NOW, LEASE);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'RUNNING', attempts: 3, instance: 'i-2', leaseUntil: NOW + LEASE, startedAt: ISO });
    expect(d.delta).toEqual({});
    expect(d.result).toMatchObject({ kind: 'claimed', task: w });
  });

  it('treats a lease that ends exactly now as expired', () => {
    const d = decideClaim(running('i-1', NOW), job(), 'i-2', NOW, LEASE);
    expect(d.result.kind).toBe('claimed');
  });

  it('treats a RUNNING task without a lease as expired', () => {
    const d = decideClaim(running('i-1', NOW, { leaseUntil: undefined }), job(), 'i-2', NOW, LEASE);
    expect(d.result.kind).toBe('claimed');
  });

  it('takes back its own task when it receives it again (a restarted worker on the same instance)', () => {
    const d = decideClaim(running('i-1', NOW + 30_000, { attempts: 1 }), job(), 'i-1', NOW, LEASE);
    expect(d.result.kind).toBe('claimed');
    expect(d.write).toMatchObject({ attempts: 2, instance: 'i-1', leaseUntil: NOW + LEASE });
  });

  it('fails a task whose worker was lost on its last attempt', () => {
    const before = running('i-1', NOW - 1, { attempts: 3 });
    const copy = frozen(before);
    const d = decideClaim(before, job({ maxAttempts: 3 }), 'i-2', NOW, LEASE);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'FAILED', attempts: 3, finishedAt: ISO });
    expect(w.instance).toBeUndefined();
    expect(w.leaseUntil).toBeUndefined();
    expect(w.error).toBe('worker i-1 was lost during attempt 3 of 3; no attempts left');
    expect(d.delta).toEqual({ running: -1, failed: 1 });
    expect(d.result).toEqual({ kind: 'exhausted', task: w });
  });

  it('cancels a QUEUED task of a job being cancelled', () => {
    const before = task();
    const copy = frozen(before);
    const d = decideClaim(before, job({ cancelRequested: true }), 'i-1', NOW, LEASE);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'CANCELLED', finishedAt: ISO, attempts: 0 });
    expect(d.delta).toEqual({ queued: -1, cancelled: 1 });
    expect(d.result).toEqual({ kind: 'done', state: 'CANCELLED' });
  });

  it('cancels a RUNNING task with an expired lease and a cancel request instead of taking it over', () => {
    const d = decideClaim(running('i-1', NOW - 1, { cancelRequested: true }), job(), 'i-2', NOW, LEASE);
    expect(d.write).toMatchObject({ state: 'CANCELLED', finishedAt: ISO });
    expect(d.write?.instance).toBeUndefined();
    expect(d.write?.leaseUntil).toBeUndefined();
    expect(d.delta).toEqual({ running: -1, cancelled: 1 });
    expect(d.result).toEqual({ kind: 'done', state: 'CANCELLED' });
  });
});

describe('decideHeartbeat', () => {
  it('renews our lease', () => {
    const before = running('i-1', NOW + 5_000);
    const copy = frozen(before);
    const d = decideHeartbeat(before, job(), 'i-1', NOW, LEASE);
    const w = expectWrite(d, before, copy);
    expect(w.leaseUntil).toBe(NOW + LEASE);
    expect(w.state).toBe('RUNNING');
    expect(d.delta).toEqual({});
    expect(d.result).toBe('ok');
  });

  it('renews a lease that ran out when nobody took the task over', () => {
    const d = decideHeartbeat(running('i-1', NOW - 10_000), job(), 'i-1', NOW, LEASE);
    expect(d.result).toBe('ok');
    expect(d.write?.leaseUntil).toBe(NOW + LEASE);
  });

  it('says ok without a job record', () => {
    expect(decideHeartbeat(running('i-1', NOW), undefined, 'i-1', NOW, LEASE).result).toBe('ok');
  });

  it.each([
    ['the task', { cancelRequested: true }, {}],
    ['the job', {}, { cancelRequested: true }],
  ] as const)('says cancel when %s has a cancel request, and still renews', (_what, t, j) => {
    const d = decideHeartbeat(running('i-1', NOW + 1, t), job(j), 'i-1', NOW, LEASE);
    expect(d.result).toBe('cancel');
    expect(d.write?.leaseUntil).toBe(NOW + LEASE);
  });

  it.each([
    ['no task', undefined],
    ['a task taken over by another worker', running('i-2', NOW + LEASE)],
    ['a QUEUED task', task()],
    ['a SUCCEEDED task', task({ state: 'SUCCEEDED' })],
    ['a CANCELLED task', task({ state: 'CANCELLED' })],
  ])('says lost for %s', (_what, t) => {
    const d = decideHeartbeat(t, job(), 'i-1', NOW, LEASE);
    expectNoWrite(d);
    expect(d.result).toBe('lost');
  });
});

describe('decideComplete', () => {
  const complete = (before: TaskRecord, outcome: TaskOutcome, j = job()) => {
    const copy = frozen(before);
    const d = decideComplete(before, j, 'i-1', outcome, NOW);
    return { d, w: d.write ? expectWrite(d, before, copy) : undefined };
  };

  it('counts the interruption that moves a Spot task to on-demand on the job (moved:<type>), and no other', () => {
    const spot = job({ spotInterruptions: 2 });
    const released = { kind: 'released', reason: 'instance interrupted', interrupted: true } as const;
    // 1 → 2 reaches the limit: moved, with the task counts of the release.
    expect(complete(running('i-1', NOW + 1, { interruptions: 1 }), released, spot).d.delta).toEqual({ running: -1, queued: 1, 'moved:t3.micro': 1 });
    // 0 → 1: still on Spot; 2 → 3 (already moved); an agent stopped without an interruption; a failure; no limit.
    for (const [t, outcome, j] of [
      [running('i-1', NOW + 1), released, spot],
      [running('i-1', NOW + 1, { interruptions: 2 }), released, spot],
      [running('i-1', NOW + 1, { interruptions: 1 }), { kind: 'released', reason: 'agent stopped' }, spot],
      [running('i-1', NOW + 1, { interruptions: 1 }), { kind: 'failed', error: 'x', retryable: true }, spot],
      [running('i-1', NOW + 1, { interruptions: 1 }), released, job()],
    ] as const) {
      expect(Object.keys(complete(t, outcome as TaskOutcome, j).d.delta).filter((k) => k.startsWith('moved:'))).toEqual([]);
    }
  });

  it('records success', () => {
    const { d, w } = complete(running('i-1', NOW + 1, { signal: 'SIGKILL' }), {
      kind: 'succeeded',
      exitCode: 0,
      resultKey: 'jobs/j/tasks/1/files/results.json',
      logKey: 'jobs/j/tasks/1/log.txt',
      outputKeys: ['jobs/j/tasks/1/files/out.txt'],
    });
    expect(w).toMatchObject({
      state: 'SUCCEEDED',
      exitCode: 0,
      finishedAt: ISO,
      resultKey: 'jobs/j/tasks/1/files/results.json',
      logKey: 'jobs/j/tasks/1/log.txt',
      outputKeys: ['jobs/j/tasks/1/files/out.txt'],
    });
    expect(w?.instance).toBeUndefined();
    expect(w?.leaseUntil).toBeUndefined();
    expect(w?.signal).toBeUndefined();
    expect(d.delta).toEqual({ running: -1, succeeded: 1 });
    expect(d.result).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
  });

  const failed = (over: Partial<Extract<TaskOutcome, { kind: 'failed' }>> = {}): TaskOutcome => ({
    kind: 'failed',
    exitCode: 1,
    error: 'exit code 1',
    stderrTail: 'boom',
    retryable: true,
    ...over,
  });

  it('puts a failed attempt with attempts left back in the queue', () => {
    const { d, w } = complete(running('i-1', NOW + 1, { attempts: 1 }), failed());
    expect(w).toMatchObject({ state: 'QUEUED', attempts: 1, exitCode: 1, error: 'exit code 1', stderrTail: 'boom' });
    expect(w?.finishedAt).toBeUndefined();
    expect(w?.instance).toBeUndefined();
    expect(d.delta).toEqual({ running: -1, queued: 1 });
    expect(d.result).toEqual({ kind: 'recorded', state: 'QUEUED' });
  });

  it('fails a task on its last attempt', () => {
    const { d, w } = complete(running('i-1', NOW + 1, { attempts: 3 }), failed({ signal: 'SIGKILL', exitCode: undefined }), job({ maxAttempts: 3 }));
    expect(w).toMatchObject({ state: 'FAILED', finishedAt: ISO, signal: 'SIGKILL' });
    expect(d.delta).toEqual({ running: -1, failed: 1 });
    expect(d.result).toEqual({ kind: 'recorded', state: 'FAILED' });
  });

  it('fails a non-retryable failure even with attempts left', () => {
    const { d, w } = complete(running('i-1', NOW + 1, { attempts: 1 }), failed({ retryable: false }), job({ maxAttempts: 5 }));
    expect(w?.state).toBe('FAILED');
    expect(d.delta).toEqual({ running: -1, failed: 1 });
  });

  it.each([
    ['the job', {}, { cancelRequested: true }],
    ['the task', { cancelRequested: true }, {}],
  ] as const)('does not retry when %s is being cancelled', (_what, t, j) => {
    const { w } = complete(running('i-1', NOW + 1, { attempts: 1, ...t }), failed(), job(j));
    expect(w?.state).toBe('FAILED');
  });

  it('keeps only the last 2000 characters of stderr', () => {
    const tail = `${'a'.repeat(3000)}${'z'.repeat(2000)}`;
    const { w } = complete(running('i-1', NOW + 1), failed({ stderrTail: tail }));
    expect(w?.stderrTail).toBe('z'.repeat(2000));
  });

  it('gives the attempt back when the task is released', () => {
    const { d, w } = complete(running('i-1', NOW + 1, { attempts: 2 }), { kind: 'released', reason: 'spot interruption' });
    expect(w).toMatchObject({ state: 'QUEUED', attempts: 1 });
    expect(w?.instance).toBeUndefined();
    expect(w?.leaseUntil).toBeUndefined();
    expect(d.delta).toEqual({ running: -1, queued: 1 });
    expect(d.result).toEqual({ kind: 'recorded', state: 'QUEUED' });
  });

  it('counts an interruption (not an attempt) and keeps the newest checkpoint key', () => {
    const first = complete(running('i-1', NOW + 1, { attempts: 1 }), { kind: 'released', reason: 'x', interrupted: true, checkpointKey: 'ck' }).w!;
    expect(first).toMatchObject({ state: 'QUEUED', attempts: 0, interruptions: 1, checkpointKey: 'ck' });
    // Interrupted again with nothing saved this time: the count grows, the checkpoint stays.
    const again = complete(running('i-1', NOW + 1, { attempts: 1, interruptions: 1, checkpointKey: 'ck' }), { kind: 'released', reason: 'x', interrupted: true }).w!;
    expect(again).toMatchObject({ attempts: 0, interruptions: 2, checkpointKey: 'ck' });
    // A worker stopped twice (no interruption of the instance) gives back without counting one.
    const stopped = complete(running('i-1', NOW + 1, { attempts: 1 }), { kind: 'released', reason: 'agent stopped' }).w!;
    expect(stopped.interruptions).toBeUndefined();
  });

  it('never makes attempts negative on release', () => {
    const { w } = complete(running('i-1', NOW + 1, { attempts: 0 }), { kind: 'released', reason: 'SIGTERM' });
    expect(w?.attempts).toBe(0);
  });

  it('records a cancelled attempt', () => {
    const { d, w } = complete(running('i-1', NOW + 1, { cancelRequested: true }), { kind: 'cancelled', logKey: 'log-new' });
    expect(w).toMatchObject({ state: 'CANCELLED', finishedAt: ISO, logKey: 'log-new', error: 'cancelled by gq cancel' });
    expect(d.delta).toEqual({ running: -1, cancelled: 1 });
    expect(d.result).toEqual({ kind: 'recorded', state: 'CANCELLED' });
  });

  it('keeps the old log key when a cancelled attempt has none', () => {
    const { w } = complete(running('i-1', NOW + 1, { logKey: 'log-old' }), { kind: 'cancelled' });
    expect(w?.logKey).toBe('log-old');
  });

  it.each([
    ['no task', undefined],
    ['a lease taken over by another worker', running('i-2', NOW + LEASE)],
    ['a task cancelled meanwhile', task({ state: 'CANCELLED' })],
    ['a QUEUED task', task()],
  ])('says lost for %s', (_what, t) => {
    for (const outcome of [{ kind: 'succeeded', exitCode: 0 }, failed(), { kind: 'released', reason: 'x' }, { kind: 'cancelled' }] as TaskOutcome[]) {
      const d = decideComplete(t, job(), 'i-1', outcome, NOW);
      expectNoWrite(d);
      expect(d.result).toEqual({ kind: 'lost' });
    }
  });
});

describe('decideCancel', () => {
  it('cancels a QUEUED task at once', () => {
    const before = task();
    const copy = frozen(before);
    const d = decideCancel(before, NOW);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'CANCELLED', finishedAt: ISO, error: 'cancelled by gq cancel' });
    expect(d.delta).toEqual({ queued: -1, cancelled: 1 });
    expect(d.result).toBe('cancelled');
  });

  it('cancels a RUNNING task whose worker is gone (lease expired)', () => {
    const d = decideCancel(running('i-1', NOW), NOW);
    expect(d.write).toMatchObject({ state: 'CANCELLED' });
    expect(d.write?.instance).toBeUndefined();
    expect(d.delta).toEqual({ running: -1, cancelled: 1 });
    expect(d.result).toBe('cancelled');
  });

  it('asks a RUNNING task with a live worker to stop', () => {
    const before = running('i-1', NOW + 1);
    const copy = frozen(before);
    const d = decideCancel(before, NOW);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'RUNNING', cancelRequested: true, instance: 'i-1' });
    expect(d.delta).toEqual({});
    expect(d.result).toBe('stopping');
  });

  it('does not write again for a task already asked to stop', () => {
    const d = decideCancel(running('i-1', NOW + 1, { cancelRequested: true }), NOW);
    expectNoWrite(d);
    expect(d.result).toBe('stopping');
  });

  it.each<TaskState>(['SUCCEEDED', 'FAILED', 'CANCELLED'])('leaves a %s task alone', (state) => {
    const d = decideCancel(task({ state }), NOW);
    expectNoWrite(d);
    expect(d.result).toBe('none');
  });
});

describe('decideResubmit', () => {
  it('puts a FAILED task back in the queue with a fresh attempt budget', () => {
    const before = task({
      state: 'FAILED',
      attempts: 3,
      exitCode: 2,
      signal: 'SIGKILL',
      error: 'exit code 2',
      stderrTail: 'oops',
      startedAt: ISO,
      finishedAt: ISO,
      cancelRequested: true,
      logKey: 'log',
    });
    const copy = frozen(before);
    const d = decideResubmit(before, NOW);
    const w = expectWrite(d, before, copy);
    expect(w).toMatchObject({ state: 'QUEUED', attempts: 0, logKey: 'log', updatedAt: ISO });
    for (const k of ['exitCode', 'signal', 'error', 'stderrTail', 'startedAt', 'finishedAt', 'cancelRequested'] as const) {
      expect(w[k], k).toBeUndefined();
    }
    expect(d.delta).toEqual({ failed: -1, queued: 1 });
    expect(d.result).toBe(true);
  });

  it.each<TaskState>(['QUEUED', 'RUNNING', 'SUCCEEDED', 'CANCELLED'])('leaves a %s task alone', (state) => {
    const d = decideResubmit(task({ state }), NOW);
    expectNoWrite(d);
    expect(d.result).toBe(false);
  });
});

describe('decideTag', () => {
  it('adds a tag without touching the state', () => {
    const before = running('i-1', NOW + 1, { tags: { epoch: '1' } });
    const copy = frozen(before);
    const w = decideTag(before, 'loss', '0.25', NOW);
    expect(before).toEqual(copy);
    expect(w).toMatchObject({ state: 'RUNNING', tags: { epoch: '1', loss: '0.25' }, version: before.version + 1, updatedAt: ISO });
    expect(decideTag(w, 'epoch', '2', NOW).tags).toEqual({ epoch: '2', loss: '0.25' });
  });
  it('records when each tag was set, keeping the times of the others', () => {
    const w = decideTag(running('i-1', NOW + 1, { tags: { epoch: '1' } }), 'loss', '0.25', NOW);
    expect(w.tagTimes).toEqual({ loss: ISO });
    const later = new Date(NOW + 5000).toISOString();
    expect(decideTag(w, 'epoch', '2', NOW + 5000).tagTimes).toEqual({ loss: ISO, epoch: later });
  });
});

describe('counters never drift', () => {
  it('keeps job counts equal to the tally of task states through random races', () => {
    let seed = 99;
    const rnd = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const j = job({ maxAttempts: 2 });
    const tasks = new Map<number, TaskRecord>();
    for (let i = 1; i <= 20; i++) {
      tasks.set(i, newTaskRecord(j.name, { task: i, instanceType: 't3.micro', command: `run ${i}` }, NOW));
    }
    const counts: Counts = { ...emptyCounts(), queued: 20 };
    const workers = ['i-1', 'i-2', 'i-3'];
    let now = NOW;
    const apply = <R>(id: number, d: Decision<R>) => {
      const before = tasks.get(id) as TaskRecord;
      if (d.write) {
        expect(d.write.version).toBe(before.version + 1);
        tasks.set(id, d.write);
      }
      for (const [k, v] of Object.entries(d.delta)) counts[k as keyof Counts] += v ?? 0;
    };
    for (let step = 0; step < 5_000; step++) {
      now += rnd(20_000);
      const id = 1 + rnd(20);
      const t = tasks.get(id) as TaskRecord;
      const w = workers[rnd(workers.length)] as string;
      switch (rnd(8)) {
        case 0:
        case 1:
          apply(id, decideClaim(t, j, w, now, LEASE));
          break;
        case 2:
          apply(id, decideHeartbeat(t, j, w, now, LEASE));
          break;
        case 3: {
          const outcomes: TaskOutcome[] = [
            { kind: 'succeeded', exitCode: 0 },
            { kind: 'failed', error: 'x', retryable: rnd(2) === 0 },
            { kind: 'released', reason: 'x' },
            { kind: 'cancelled' },
          ];
          apply(id, decideComplete(t, j, t.instance ?? w, outcomes[rnd(4)] as TaskOutcome, now));
          break;
        }
        case 4:
          if (rnd(50) === 0) apply(id, decideCancel(t, now));
          break;
        case 5:
          apply(id, decideResubmit(t, now));
          break;
        default:
          apply(id, decideComplete(t, j, w, { kind: 'failed', error: 'x', retryable: true }, now));
      }
      const tally = emptyCounts();
      for (const rec of tasks.values()) tally[countKey(rec.state)]++;
      expect(counts).toEqual(tally);
      for (const rec of tasks.values()) {
        expect(rec.attempts).toBeGreaterThanOrEqual(0);
        expect(rec.attempts).toBeLessThanOrEqual(j.maxAttempts);
        if (rec.state === 'RUNNING') expect(rec.instance).toBeDefined();
        else expect(rec.instance).toBeUndefined();
      }
    }
  });
});

describe('decideFailUnrun (a task whose message went to the dead-letter queue)', () => {
  it('fails a queued task without counting an attempt', () => {
    const before = task({ state: 'QUEUED', attempts: 1 });
    const d = decideFailUnrun(before, 'dead letter', NOW);
    expect(d.result).toBe(true);
    expect(d.write).toMatchObject({ state: 'FAILED', attempts: 1, error: 'dead letter', version: before.version + 1 });
    expect(d.delta).toEqual({ queued: -1, failed: 1 });
  });
  it('fails a running task whose lease ran out, and leaves a live lease alone', () => {
    const lost = decideFailUnrun(running('i-1', NOW - 1), 'dead letter', NOW);
    expect(lost.write).toMatchObject({ state: 'FAILED', instance: undefined, leaseUntil: undefined });
    expect(lost.delta).toEqual({ running: -1, failed: 1 });
    const live = decideFailUnrun(running('i-1', NOW + 1000), 'dead letter', NOW);
    expect(live).toEqual({ delta: {}, result: false });
  });
  it('does nothing to a final task', () => {
    expect(decideFailUnrun(task({ state: 'SUCCEEDED' }), 'x', NOW)).toEqual({ delta: {}, result: false });
  });
});
