/**
 * The on-demand fallback on the agent's side (job/on-demand.ts): a task given back on a Spot
 * interruption that reaches the job's limit is sent to the type's on-demand queue instead of back
 * to the Spot queue, within the notice's two minutes. The release is recorded first (uncharged,
 * counted in `interruptions`), then the task is sent there, then the Spot queue's message deleted:
 * a crash in between leaves the Spot message to come back (the task may then run once more on
 * Spot), never a task without a message.
 */
import { queueFor, type JobRecord, type Logger, type TaskRecord } from '@gq/common';
import type { AgentDeps } from './deps.js';

/** Whether the task, just released as interrupted, went to the on-demand queue (else: give it back as usual). */
export async function moveToOnDemand(d: AgentDeps, log: Logger, job: JobRecord, task: TaskRecord, receipt: string): Promise<boolean> {
  if (d.pool === 'on-demand') return false;
  const interruptions = (task.interruptions ?? 0) + 1; // this one, just recorded
  if (queueFor({ interruptions }, job) !== 'on-demand') return false;
  try {
    const od = await d.backend.queues.open(job.name, task.instanceType, 'on-demand');
    await od.send([task.task]);
  } catch (err) {
    log.warn({ err }, 'could not send the task to the on-demand queue; it goes back to the Spot queue');
    return false;
  }
  await d.queue.delete(receipt).catch((err: unknown) => log.warn({ err }, 'could not delete the Spot queue\'s message; it comes back and may run once more on Spot'));
  d.onMovedToOnDemand?.();
  log.info({ interruptions, limit: job.spotInterruptions }, 'interrupted too often on Spot: the next attempt runs on on-demand');
  return true;
}
