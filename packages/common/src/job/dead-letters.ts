/** Tasks whose message went to the dead-letter queue are recorded as failed (written against the ports). */
import type { StatusStore, TaskQueue } from '../ports.js';
import type { JobRecord } from './model.js';

/**
 * A message that was received too many times without its task finishing goes to the queue's
 * dead-letter queue, and no worker ever receives it again: its task would stay QUEUED (or RUNNING
 * under a dead worker's lease) for ever, `gq status` would not say why and `--wait` would never
 * end. Called when the type's queue holds nothing any more (so no other message can still bring
 * such a task back), by a gq command's reconcile or by the idle worker that stays (agent
 * idle-leave.ts), this records each of those tasks as FAILED with the reason, which
 * `gq status` shows and `gq retry --failed` undoes. A task whose worker still holds a live lease
 * is left to it. Messages of tasks that are already final are left where they are.
 * No attempt is counted for it (StatusStore.failUnrun). Returns the tasks failed.
 */
export async function failDeadLettered(status: StatusStore, job: JobRecord, queue: TaskQueue): Promise<number[]> {
  const reason =
    'its queue message was delivered too many times without the task finishing and went to the dead-letter queue, ' +
    `so no worker will receive it again; run it again with: gq retry ${job.name} --failed`;
  const failed: number[] = [];
  for (const n of await queue.deadLetters()) {
    if (await status.failUnrun(job.name, n, reason)) failed.push(n);
  }
  return failed;
}
