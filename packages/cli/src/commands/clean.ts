/**
 * gq clean NAME: remove the job's queues, workers (groups, launch templates and, on AWS, the
 * job's IAM role and instance profile) and its licence; keep its status and results.
 */
import { JobNotFoundError, poolsOf, UserError } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';

export async function runClean(ctx: CommandContext, a: { name: string; force?: boolean }): Promise<number> {
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    if (job.counts.queued + job.counts.running > 0 && !a.force) {
      throw new UserError(`Job ${a.name} still has ${job.counts.queued} queued and ${job.counts.running} running tasks.`, {
        hint: `Cancel it first (gq cancel ${a.name}), or add --force.`,
      });
    }
    await backend.fleet.remove(a.name);
    for (const type of Object.keys(job.instanceTypes)) for (const pool of poolsOf(job)) await backend.queues.remove(a.name, type, pool);
    // The licence goes with the workers (nothing can use it any more); results stay.
    await backend.secrets.deleteLicence(a.name);
    ctx.io.out(`Removed the queues, workers and licence of ${a.name}; its status and results are kept (gq results ${a.name}).`);
    return 0;
  } finally {
    await backend.close();
  }
}
