/** gq resume NAME --max-cost USD: set a job's cost cap anew (raise it) and start workers for its queued tasks. */
import { formatUsd, JobNotFoundError, UserError } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { reconcile } from '../workers.js';
import { followJob } from '../follow.js';

export async function runResume(ctx: CommandContext, a: { name: string; wait?: boolean; json?: boolean }): Promise<number> {
  const maxCost = ctx.config.maxCost;
  if (maxCost === undefined) throw new UserError('Give the new cost cap.', { hint: `gq resume ${a.name} --max-cost USD (see gq status ${a.name} for the spend so far).` });
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    if (job.cancelRequested) throw new UserError(`Job ${a.name} was cancelled.`, { hint: 'Submit it again under a new --name.' });
    await backend.status.setMaxCost(a.name, maxCost);
    const fresh = (await backend.status.getJob(a.name))!;
    // Workers for the queued tasks, as gq status starts them for a job whose workers all left.
    const { restarted, capped } = await reconcile(ctx, backend, fresh);
    if (a.json && !a.wait) ctx.io.out(JSON.stringify({ name: a.name, maxCost, restarted, capped: !!capped }));
    else if (!a.json) {
      ctx.io.err(
        capped
          ? `Job ${a.name}: cost cap set to ${formatUsd(maxCost)}, still reached; raise it further (gq status ${a.name} shows the figures).`
          : `Job ${a.name}: cost cap set to ${formatUsd(maxCost)}${restarted.length ? `; workers started for ${restarted.join(', ')}` : ''}.`,
      );
    }
    if (a.wait && !capped) return await followJob(ctx, backend, a.name, { json: a.json });
    return capped ? 1 : 0;
  } finally {
    await backend.close();
  }
}
