/**
 * The on-demand fallback on the agent's side (job/on-demand.ts): a task given back on a Spot
 * interruption that reaches the job's limit is sent to the type's on-demand queue instead of back
 * to the Spot queue, within the notice's two minutes. The release is recorded first (uncharged,
 * counted in `interruptions`), then the task is sent there, then the Spot queue's message deleted:
 * a crash in between leaves the Spot message to come back (the task may then run once more on
 * Spot), never a task without a message.
 *
 * Then the agent raises the on-demand group (made at 0 at submit) to what its queue needs,
 * ceil((visible + delayed + in flight) ÷ slots), never lowering it and never above its MaxSize
 * (common/src/aws/fleet-raise.ts), so the task runs without waiting for a gq command. A raise
 * that fails or takes too long is logged and left to the next gq command, which reconciles the
 * group from the same queue as before (cli/src/workers.ts).
 */
import { queueFor, slotsOf, type JobRecord, type Logger, type TaskQueue, type TaskRecord } from '@gq/common';
import type { AgentDeps } from './deps.js';

/** Whether the task, just released as interrupted, went to the on-demand queue (else: give it back as usual). */
export async function moveToOnDemand(d: AgentDeps, log: Logger, job: JobRecord, task: TaskRecord, receipt: string): Promise<boolean> {
  if (d.pool === 'on-demand') return false;
  const interruptions = (task.interruptions ?? 0) + 1; // this one, just recorded
  if (queueFor({ interruptions }, job) !== 'on-demand') return false;
  let od: TaskQueue;
  try {
    od = await d.backend.queues.open(job.name, task.instanceType, 'on-demand');
    await od.send([task.task]);
  } catch (err) {
    log.warn({ err }, 'could not send the task to the on-demand queue; it goes back to the Spot queue');
    return false;
  }
  await d.queue.delete(receipt).catch((err: unknown) => log.warn({ err }, 'could not delete the Spot queue\'s message; it comes back and may run once more on Spot'));
  d.onMovedToOnDemand?.();
  log.info({ interruptions, limit: job.spotInterruptions }, 'interrupted too often on Spot: the next attempt runs on on-demand');
  await raiseOnDemand(d, log, job, task.instanceType, od);
  return true;
}

/**
 * How long the raise may take in all: the interruption notice gives two minutes, which the
 * checkpoint upload and the release share (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html).
 */
export const RAISE_TIMEOUT_MS = 15_000;

/** Raise the type's on-demand group for its queue's backlog; a failure is only logged. */
export async function raiseOnDemand(d: AgentDeps, log: Logger, job: JobRecord, instanceType: string, od: TaskQueue, timeoutMs = RAISE_TIMEOUT_MS): Promise<void> {
  const raise = d.backend.fleet.raiseCapacity?.bind(d.backend.fleet);
  if (!raise) return;
  const signal = AbortSignal.timeout(timeoutMs);
  const timedOut = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
  try {
    const desired = await Promise.race([
      (async () => {
        const q = await od.depth();
        return raise(job.name, instanceType, q.visible + q.delayed + q.inFlight, slotsOf(job, instanceType), 'on-demand', signal);
      })(),
      timedOut,
    ]);
    if (desired === undefined) log.warn('the on-demand group does not exist; the next gq command starts it');
    else log.info({ desired }, 'raised the on-demand group');
  } catch (err) {
    log.warn({ err }, 'could not raise the on-demand group; the next gq command starts it');
  }
}
