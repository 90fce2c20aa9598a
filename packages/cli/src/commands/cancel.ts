/** gq cancel NAME: queued tasks never start, running ones are stopped, workers leave. */
import { JobNotFoundError, poolsOf } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';

export async function runCancel(ctx: CommandContext, a: { name: string; json?: boolean }): Promise<number> {
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    const r = await backend.status.cancel(a.name);
    for (const type of Object.keys(job.instanceTypes)) {
      for (const pool of poolsOf(job)) {
        const q = await backend.queues.open(a.name, type, pool).catch(() => undefined);
        await q?.purge();
      }
    }
    await backend.fleet.stop(a.name);
    if (a.json) ctx.io.out(JSON.stringify({ name: a.name, ...r }));
    else {
      ctx.io.out(`Cancelled job ${a.name}: ${r.cancelled} task(s) will not run; ${r.stopping} running task(s) are being stopped.`);
    }
    return 0;
  } finally {
    await backend.close();
  }
}
