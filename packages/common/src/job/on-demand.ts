/**
 * The on-demand fallback of a Spot job (pure): after `spotInterruptions` interruptions of one task,
 * its next attempt runs on on-demand. Each instance type of such a job has two pools, each a queue
 * and a group: 'main' (gq-<job>-<type>, Spot) and 'on-demand' (gq-<job>-<type>-od). A task's
 * message goes to the pool `queueFor` names, wherever it is sent (submit, the agent giving a task
 * back, a re-send of a lost message); interruptions stay uncharged as attempts.
 */
import type { JobSpec, TaskRecord } from './model.js';

/** Which of a type's queues and groups: its own, or a Spot job's on-demand fallback. */
export type Pool = 'main' | 'on-demand';

/** Interruptions of one task after which it moves to on-demand, unless configured (0: never). */
export const DEFAULT_SPOT_INTERRUPTIONS = 3;

/** The job's pools per instance type: 'on-demand' too when it falls back (a Spot job with spotInterruptions > 0). */
export function poolsOf(job: Pick<JobSpec, 'spotInterruptions'>): Pool[] {
  return (job.spotInterruptions ?? 0) > 0 ? ['main', 'on-demand'] : ['main'];
}

/** The pool whose queue a task's message belongs to: on-demand once its interruptions reach the job's limit. */
export function queueFor(task: Pick<TaskRecord, 'interruptions'>, job: Pick<JobSpec, 'spotInterruptions'>): Pool {
  const limit = job.spotInterruptions ?? 0;
  return limit > 0 && (task.interruptions ?? 0) >= limit ? 'on-demand' : 'main';
}

/**
 * The job counter that counts a type's tasks moved to on-demand: a write that moves one adds 1 to
 * it (transitions.ts), in the transaction that records the interruption, so `gq status` reads the
 * count with the job instead of over every task. A task moves once: its interruptions only grow
 * (`gq retry` keeps them), and an on-demand attempt is not interrupted by Spot.
 */
export function movedCounter(instanceType: string): `moved:${string}` {
  return `moved:${instanceType}`;
}

/** Whether this write moves the task from its type's Spot pool to on-demand. */
export function movesToOnDemand(before: Pick<TaskRecord, 'interruptions'>, after: Pick<TaskRecord, 'interruptions'>, job: Pick<JobSpec, 'spotInterruptions'>): boolean {
  return queueFor(before, job) === 'main' && queueFor(after, job) === 'on-demand';
}
