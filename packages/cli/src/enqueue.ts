/**
 * Enqueueing a job's tasks, for `gq submit` and `gq retry`: one message per task in the queue of
 * its instance type, created (or found) with the job's visibility and dead-letter limit.
 */
import { maxReceiveCountFor, poolsOf, QueueDeletedRecentlyError, sleep, type Backend, type JobRecord, type Pool, type TaskQueue } from '@gq/common';
import type { CommandContext } from './context.js';
import { progressBar } from './progress.js';

export interface EnqueueOptions {
  /**
   * Write a marker after a type's messages are all sent and skip the types that have one, so that
   * a resumed submit does not enqueue twice (submit). A retry enqueues every task it is given.
   */
  resumable: boolean;
  /**
   * How long to wait while SQS refuses a queue name it deleted less than 60 seconds ago (a retry
   * right after the job finished and its queues were removed, workers.ts removeFinishedFleet).
   * 0: do not wait.
   */
  queueNameWaitMs: number;
}

/** Tasks handed to one `send` while a bar is drawn (each send batches and parallelises them itself). */
const SEND_SLICE = 2000;

/** How long `gq retry` waits for SQS to allow a queue name again (60 s after its deletion). */
export const QUEUE_NAME_WAIT_MS = 75_000;

/**
 * Sends one message per task, one instance type after the other (in name order). Returns how many
 * tasks each type has, in the order the types first appear in `tasks`.
 */
export async function enqueueTasks(
  ctx: CommandContext,
  backend: Backend,
  job: Pick<JobRecord, 'name' | 'visibilitySeconds' | 'maxAttempts' | 'spotInterruptions'>,
  tasks: readonly { task: number; instanceType: string; /** Default main; a retried task moved to on-demand: 'on-demand' (job/on-demand.ts). */ pool?: Pool }[],
  o: EnqueueOptions,
): Promise<Record<string, number>> {
  const byType = new Map<string, { task: number; pool: Pool }[]>();
  for (const t of tasks) {
    const list = byType.get(t.instanceType) ?? [];
    list.push({ task: t.task, pool: t.pool ?? 'main' });
    byType.set(t.instanceType, list);
  }
  const bar = progressBar('Queueing tasks', tasks.length);
  try {
    for (const [type, list] of [...byType].sort((x, y) => x[0].localeCompare(y[0]))) {
      const marker = `jobs/${job.name}/enqueued/${type}`;
      const queueOptions = {
        visibilitySeconds: job.visibilitySeconds,
        // Generous: re-hiding a message whose task holds a live lease counts as a receive.
        maxReceiveCount: maxReceiveCountFor(job.maxAttempts),
      };
      // Every pool's queue (a Spot job's on-demand one too, made now: the agent that moves a task
      // there may send, not create), the type's own last: its presence says the type is enqueued.
      const queues = new Map<Pool, TaskQueue>();
      for (const pool of [...poolsOf(job)].reverse()) {
        queues.set(pool, await waitForQueueName(ctx, o.queueNameWaitMs, () => backend.queues.ensure(job.name, type, queueOptions, pool)));
      }
      if (o.resumable && (await backend.artifacts.exists(marker))) {
        bar.increment(list.length);
        continue;
      }
      for (const [pool, queue] of queues) {
        const nums = list.filter((t) => t.pool === pool).map((t) => t.task);
        // In slices when a bar is drawn (the marker still comes after the whole type); else in one call.
        const slice = bar.shown ? SEND_SLICE : Math.max(1, nums.length);
        for (let i = 0; i < nums.length; i += slice) {
          await queue.send(nums.slice(i, i + slice));
          bar.increment(Math.min(slice, nums.length - i));
        }
      }
      if (o.resumable) await backend.artifacts.putBytes(marker, String(list.length));
    }
  } finally {
    bar.stop();
  }
  return Object.fromEntries([...byType].map(([type, list]) => [type, list.length]));
}

/**
 * The queues of a finished job are removed, and SQS refuses their names for 60 seconds after:
 * retry `ensure` until it is allowed again, or `waitMs` has passed.
 */
async function waitForQueueName<T>(ctx: CommandContext, waitMs: number, ensure: () => Promise<T>): Promise<T> {
  const until = Date.now() + waitMs;
  let said = false;
  for (;;) {
    try {
      return await ensure();
    } catch (e) {
      if (!(e instanceof QueueDeletedRecentlyError) || Date.now() >= until) throw e;
      if (!said) ctx.io.err(`The queues of ${e.queue.replace(/-dlq$/, '')} were removed when the job finished; SQS allows the name again a minute after: waiting.`);
      said = true;
      await sleep(5000);
    }
  }
}
