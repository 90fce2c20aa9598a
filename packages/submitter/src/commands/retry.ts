/** gq retry NAME --failed: only the failed tasks run again (like GNU parallel --resume-failed). */
import { JobNotFoundError, UserError } from '@gq/common';
import { maxReceiveCountFor } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { startWorkers } from '../workers.js';
import { followJob } from '../follow.js';

export async function runRetry(ctx: CommandContext, a: { name: string; failed?: boolean; wait?: boolean; json?: boolean }): Promise<number> {
  if (!a.failed) throw new UserError('Say what to retry.', { hint: `gq retry ${a.name} --failed reruns the failed tasks.` });
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    if (job.cancelRequested) throw new UserError(`Job ${a.name} was cancelled.`, { hint: 'Submit it again under a new --name.' });
    const tasks = await backend.status.resubmitFailed(a.name);
    const byType: Record<string, number[]> = {};
    for (const t of tasks) (byType[t.instanceType] ??= []).push(t.task);
    for (const [type, nums] of Object.entries(byType)) {
      const q = await backend.queues.ensure(a.name, type, { visibilitySeconds: job.visibilitySeconds, maxReceiveCount: maxReceiveCountFor(job.maxAttempts) });
      await q.send(nums);
    }
    const fresh = (await backend.status.getJob(a.name))!;
    await startWorkers(ctx, backend, fresh, Object.fromEntries(Object.entries(byType).map(([t, n]) => [t, n.length])));
    if (a.json && !a.wait) ctx.io.out(JSON.stringify({ name: a.name, retried: tasks.map((t) => t.task) }));
    else if (!a.json) ctx.io.err(tasks.length ? `Retrying ${tasks.length} failed task(s) of ${a.name}: ${tasks.map((t) => t.task).join(', ')}` : `Job ${a.name} has no failed tasks.`);
    if (a.wait && tasks.length) return await followJob(ctx, backend, a.name, { json: a.json });
    return 0;
  } finally {
    await backend.close();
  }
}
