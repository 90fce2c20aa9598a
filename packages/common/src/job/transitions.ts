/**
 * What each task operation does, as pure functions of the record read from the store. Both
 * backends call these and then write the result conditionally on the version they read (a
 * SQLite transaction locally, a DynamoDB transaction on AWS), together with the job counter delta.
 * A lost race re-reads and decides again, so the counters can never drift.
 */
import type { ClaimOptions, ClaimResult, CompleteResult, HeartbeatResult, TaskOutcome } from '../ports.js';
import { completeAttempt, loseAttempt, openAttempt } from './history.js';
import { IllegalTransitionError, UserError } from '../errors.js';
import type { JobRecord, NewTask, TaskRecord } from './model.js';
import { counterDelta, isFinal, nextState, type CounterDelta, type TaskEvent } from './states.js';
import { movedCounter, movesToOnDemand } from './on-demand.js';

export interface Decision<R> {
  /** The record to write (conditional on `before.version`), or undefined for no write. */
  write?: TaskRecord;
  /** Counter changes to apply to the job in the same transaction. */
  delta: CounterDelta;
  result: R;
}

const STDERR_TAIL_MAX = 2000;

function move(before: TaskRecord, event: TaskEvent, now: number, patch: Partial<TaskRecord>): TaskRecord {
  const to = nextState(before.state, event);
  if (!to) throw new IllegalTransitionError(`task ${before.task}: cannot ${event} from ${before.state}`);
  return { ...before, ...patch, state: to, version: before.version + 1, updatedAt: new Date(now).toISOString() };
}

function decided<R>(before: TaskRecord, write: TaskRecord, result: R): Decision<R> {
  return { write, delta: counterDelta(before.state, write.state), result };
}

export function newTaskRecord(job: string, t: NewTask, now: number): TaskRecord {
  return {
    job,
    task: t.task,
    instanceType: t.instanceType,
    command: t.command,
    state: 'QUEUED',
    attempts: 0,
    tags: {},
    updatedAt: new Date(now).toISOString(),
    version: 0,
  };
}

export function decideClaim(
  task: TaskRecord | undefined,
  job: JobRecord,
  instance: string,
  now: number,
  leaseMs: number,
  opts?: ClaimOptions,
): Decision<ClaimResult> {
  if (!task) return { delta: {}, result: { kind: 'missing' } };
  if (isFinal(task.state)) return { delta: {}, result: { kind: 'done', state: task.state } };
  // A RUNNING task reaching here has a lease that ran out (or is the claimer's own): its open
  // attempt, if any, was lost.
  const lost = task.state === 'RUNNING' ? loseAttempt(task.history, task.leaseUntil, now) : task.history;
  if (job.cancelRequested || task.cancelRequested) {
    const w = move(task, 'cancel', now, { finishedAt: new Date(now).toISOString(), leaseUntil: undefined, instance: undefined, history: lost });
    return decided(task, w, { kind: 'done', state: 'CANCELLED' });
  }
  const lease = {
    instance,
    lastInstance: instance,
    leaseUntil: now + leaseMs,
    startedAt: new Date(now).toISOString(),
    history: openAttempt(task.history, instance, now, opts, task.leaseUntil),
  };
  if (task.state === 'QUEUED') {
    const w = move(task, 'claim', now, { ...lease, attempts: task.attempts + 1 });
    return decided(task, w, { kind: 'claimed', task: w, job });
  }
  // RUNNING
  if ((task.leaseUntil ?? 0) > now && task.instance !== instance) {
    const since = task.startedAt ? Date.parse(task.startedAt) : undefined;
    return { delta: {}, result: { kind: 'leased', leaseUntil: task.leaseUntil ?? now, runningSince: since } };
  }
  // The holder's lease ran out: its worker was lost (crash, kill -9, reclaimed instance).
  if (task.attempts >= job.maxAttempts) {
    const w = move(task, 'fail', now, {
      instance: undefined,
      leaseUntil: undefined,
      finishedAt: new Date(now).toISOString(),
      history: lost,
      error: `worker ${task.instance ?? '?'} was lost during attempt ${task.attempts} of ${job.maxAttempts}; no attempts left`,
    });
    return decided(task, w, { kind: 'exhausted', task: w });
  }
  const w = move(task, 'takeover', now, { ...lease, attempts: task.attempts + 1 });
  return { write: w, delta: {}, result: { kind: 'claimed', task: w, job } };
}

export function decideHeartbeat(
  task: TaskRecord | undefined,
  job: JobRecord | undefined,
  instance: string,
  now: number,
  leaseMs: number,
): Decision<HeartbeatResult> {
  if (!task || task.state !== 'RUNNING' || task.instance !== instance) return { delta: {}, result: 'lost' };
  const result: HeartbeatResult = task.cancelRequested || job?.cancelRequested ? 'cancel' : 'ok';
  const w: TaskRecord = { ...task, leaseUntil: now + leaseMs, version: task.version + 1 };
  return { write: w, delta: {}, result };
}

export function decideComplete(
  task: TaskRecord | undefined,
  job: JobRecord,
  instance: string,
  outcome: TaskOutcome,
  now: number,
): Decision<CompleteResult> {
  if (!task || task.state !== 'RUNNING' || task.instance !== instance) return { delta: {}, result: { kind: 'lost' } };
  const finishedAt = new Date(now).toISOString();
  const clear = { instance: undefined, leaseUntil: undefined, history: completeAttempt(task.history, outcome, now) };
  let w: TaskRecord;
  switch (outcome.kind) {
    case 'succeeded':
      w = move(task, 'succeed', now, {
        ...clear,
        finishedAt,
        exitCode: outcome.exitCode,
        signal: undefined,
        error: outcome.error,
        resultKey: outcome.resultKey,
        logKey: outcome.logKey,
        outputKeys: outcome.outputKeys,
      });
      break;
    case 'failed': {
      const again = outcome.retryable && task.attempts < job.maxAttempts && !job.cancelRequested && !task.cancelRequested;
      w = move(task, again ? 'retry' : 'fail', now, {
        ...clear,
        finishedAt: again ? undefined : finishedAt,
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        error: outcome.error,
        stderrTail: outcome.stderrTail?.slice(-STDERR_TAIL_MAX),
        logKey: outcome.logKey,
      });
      break;
    }
    case 'released':
      w = move(task, 'release', now, {
        ...clear,
        attempts: Math.max(0, task.attempts - 1),
        interruptions: outcome.interrupted ? (task.interruptions ?? 0) + 1 : task.interruptions,
        checkpointKey: outcome.checkpointKey ?? task.checkpointKey,
      });
      break;
    case 'cancelled':
      w = move(task, 'cancel', now, { ...clear, finishedAt, logKey: outcome.logKey ?? task.logKey, error: 'cancelled by gq cancel' });
      break;
  }
  const d = decided(task, w, { kind: 'recorded', state: w.state } as const);
  // The interruption that moves it to on-demand is counted on the job (on-demand.ts).
  if (movesToOnDemand(task, w, job)) d.delta[movedCounter(task.instanceType)] = 1;
  return d;
}

/** Cancel one task: queued ones at once, running ones are asked to stop unless their worker is gone. */
export function decideCancel(task: TaskRecord, now: number): Decision<'cancelled' | 'stopping' | 'none'> {
  if (task.state === 'QUEUED' || (task.state === 'RUNNING' && (task.leaseUntil ?? 0) <= now)) {
    const w = move(task, 'cancel', now, {
      instance: undefined,
      leaseUntil: undefined,
      finishedAt: new Date(now).toISOString(),
      error: 'cancelled by gq cancel',
      // A running task cancelled here has lost its worker: its attempt was lost, not stopped.
      history: loseAttempt(task.history, task.leaseUntil, now),
    });
    return decided(task, w, 'cancelled');
  }
  if (task.state === 'RUNNING' && !task.cancelRequested) {
    return { write: { ...task, cancelRequested: true, version: task.version + 1 }, delta: {}, result: 'stopping' };
  }
  return { delta: {}, result: task.state === 'RUNNING' ? 'stopping' : 'none' };
}

/**
 * A task that can no longer run (its message went to the dead-letter queue) fails without an
 * attempt: queued, or running under a lease whose worker is gone. Not while a live lease holds it.
 */
export function decideFailUnrun(task: TaskRecord, reason: string, now: number): Decision<boolean> {
  const unrun = task.state === 'QUEUED' || (task.state === 'RUNNING' && (task.leaseUntil ?? 0) <= now);
  if (!unrun) return { delta: {}, result: false };
  const w = move(task, 'fail', now, {
    instance: undefined,
    leaseUntil: undefined,
    finishedAt: new Date(now).toISOString(),
    error: reason,
    history: loseAttempt(task.history, task.leaseUntil, now),
  });
  return decided(task, w, true);
}

/** `gq retry --failed`: a FAILED task goes back to the queue with a fresh attempt budget. */
export function decideResubmit(task: TaskRecord, now: number): Decision<boolean> {
  if (task.state !== 'FAILED') return { delta: {}, result: false };
  const w = move(task, 'resubmit', now, {
    attempts: 0,
    exitCode: undefined,
    signal: undefined,
    error: undefined,
    stderrTail: undefined,
    finishedAt: undefined,
    startedAt: undefined,
    cancelRequested: undefined,
  });
  return decided(task, w, true);
}

/**
 * Progress tags a task keeps at most: each is at most 64 + 256 characters (gq-agent tag), so they
 * stay a small part of the task's DynamoDB item, which may not exceed 400 KB with its command.
 */
export const MAX_TASK_TAGS = 50;

/** A new tag key on a task that has MAX_TASK_TAGS already. */
export function tooManyTagsError(job: string, task: number, key: string): UserError {
  return new UserError(`Task ${task} of job "${job}" has ${MAX_TASK_TAGS} progress tags already; "${key}" would be one more.`, {
    hint: `A task keeps at most ${MAX_TASK_TAGS} tags: set new values on the keys it has rather than new keys.`,
  });
}

export function decideTag(task: TaskRecord, key: string, value: string, now: number): TaskRecord {
  if (!(key in task.tags) && Object.keys(task.tags).length >= MAX_TASK_TAGS) throw tooManyTagsError(task.job, task.task, key);
  return {
    ...task,
    tags: { ...task.tags, [key]: value },
    tagTimes: { ...task.tagTimes, [key]: new Date(now).toISOString() },
    version: task.version + 1,
    updatedAt: new Date(now).toISOString(),
  };
}
