/** gq retry NAME --failed: only the failed tasks run again (like GNU parallel --resume-failed). */
import { readFileSync } from 'node:fs';
import { JobNotFoundError, QueueDeletedRecentlyError, registerSecret, sleep, UserError } from '@gq/common';
import { maxReceiveCountFor } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { startWorkers } from '../workers.js';
import { followJob } from '../follow.js';
import { licenceExpiry, licenceFile } from './submit.js';

export async function runRetry(
  ctx: CommandContext,
  a: { name: string; failed?: boolean; license?: string; wait?: boolean; json?: boolean },
): Promise<number> {
  if (!a.failed) throw new UserError('Say what to retry.', { hint: `gq retry ${a.name} --failed reruns the failed tasks.` });
  const licenceText = a.license ? readFileSync(licenceFile(a.license), 'utf8') : undefined;
  if (licenceText !== undefined) registerSecret(licenceText);
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    if (job.cancelRequested) throw new UserError(`Job ${a.name} was cancelled.`, { hint: 'Submit it again under a new --name.' });
    if (licenceText !== undefined && !job.licenseKey) {
      throw new UserError(`Job ${a.name} was submitted without a licence.`, { hint: 'Drop --license, or submit the job again under a new --name with it.' });
    }
    // The licence is deleted when a job finishes: tasks that run again need it stored again.
    if (job.licenseKey && licenceText === undefined && (await backend.status.listTasks(a.name, { states: ['FAILED'] })).length > 0) {
      if ((await backend.secrets.getLicence(a.name)) === undefined) {
        throw new UserError(`The licence of job ${a.name} was deleted when the job finished (or it expired).`, {
          hint: `Give it again: gq retry ${a.name} --failed --license gurobi.lic`,
        });
      }
    }
    if (licenceText !== undefined) await backend.secrets.putLicence(a.name, licenceText, licenceExpiry());
    const tasks = await backend.status.resubmitFailed(a.name);
    const byType: Record<string, number[]> = {};
    for (const t of tasks) (byType[t.instanceType] ??= []).push(t.task);
    for (const [type, nums] of Object.entries(byType)) {
      const q = await ensureQueue(ctx, () =>
        backend.queues.ensure(a.name, type, { visibilitySeconds: job.visibilitySeconds, maxReceiveCount: maxReceiveCountFor(job.maxAttempts) }),
      );
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

/** How long `gq retry` waits for SQS to allow a queue name again (60 s after its deletion). */
const QUEUE_NAME_WAIT_MS = 75_000;

/**
 * The queues of a finished job are removed (workers.ts removeFinishedFleet), and SQS refuses
 * their names for 60 seconds after: a retry right after the job finished waits for them.
 */
async function ensureQueue<T>(ctx: CommandContext, ensure: () => Promise<T>, waitMs = QUEUE_NAME_WAIT_MS): Promise<T> {
  const until = Date.now() + waitMs;
  let said = false;
  for (;;) {
    try {
      return await ensure();
    } catch (e) {
      if (!(e instanceof QueueDeletedRecentlyError) || Date.now() > until) throw e;
      if (!said) ctx.io.err(`The queues of ${e.queue.replace(/-dlq$/, '')} were removed when the job finished; SQS allows the name again a minute after: waiting.`);
      said = true;
      await sleep(5000);
    }
  }
}
