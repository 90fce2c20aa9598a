/** gq retry NAME --failed: only the failed tasks run again (like GNU parallel --resume-failed). */
import { readFileSync } from 'node:fs';
import { JobNotFoundError, poolsOf, queueFor, registerSecret, UserError, type Backend, type JobRecord, type NewTask, type Pool } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { startWorkers } from '../workers.js';
import { followJob } from '../follow.js';
import { enqueueTasks, QUEUE_NAME_WAIT_MS } from '../enqueue.js';
import { licenceExpiry, licenceFile } from './submit.js';
import { refuseRetryOverCap } from '../cost-cap.js';

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
    await refuseRetryOverCap(ctx, backend, job);
    if (licenceText !== undefined && !job.licenseKey) {
      throw new UserError(`Job ${a.name} was submitted without a licence.`, { hint: 'Drop --license, or submit the job again under a new --name with it.' });
    }
    // The licence is deleted when a job finishes: tasks that run again need it stored again.
    if (job.licenseKey && licenceText === undefined && (await backend.status.listTasks(a.name, { states: ['FAILED'], limit: 1 })).length > 0) {
      if ((await backend.secrets.getLicence(a.name)) === undefined) {
        throw new UserError(`The licence of job ${a.name} was deleted when the job finished (or it expired).`, {
          hint: `Give it again: gq retry ${a.name} --failed --license gurobi.lic`,
        });
      }
    }
    if (licenceText !== undefined) await backend.secrets.putLicence(a.name, licenceText, licenceExpiry());
    const tasks = await onDemandOf(backend, job, await backend.status.resubmitFailed(a.name));
    await enqueueTasks(ctx, backend, job, tasks, { resumable: false, queueNameWaitMs: QUEUE_NAME_WAIT_MS });
    const fresh = (await backend.status.getJob(a.name))!;
    // Workers for each pool's tasks (a Spot job's on-demand group for the tasks that had moved there).
    for (const pool of poolsOf(job)) {
      const byType: Record<string, number> = {};
      for (const t of tasks.filter((x) => x.pool === pool)) byType[t.instanceType] = (byType[t.instanceType] ?? 0) + 1;
      await startWorkers(ctx, backend, fresh, byType, pool);
    }
    if (a.json && !a.wait) ctx.io.out(JSON.stringify({ name: a.name, retried: tasks.map((t) => t.task) }));
    else if (!a.json) ctx.io.err(tasks.length ? `Retrying ${tasks.length} failed task(s) of ${a.name}: ${listed(tasks.map((t) => t.task))}` : `Job ${a.name} has no failed tasks.`);
    if (a.wait && tasks.length) return await followJob(ctx, backend, a.name, { json: a.json });
    return 0;
  } finally {
    await backend.close();
  }
}

/** Each retried task with its pool: one that had moved to on-demand (job/on-demand.ts) goes back to that queue. */
async function onDemandOf(backend: Backend, job: JobRecord, tasks: NewTask[]): Promise<(NewTask & { pool: Pool })[]> {
  if (poolsOf(job).length === 1 || tasks.length === 0) return tasks.map((t) => ({ ...t, pool: 'main' }));
  const records = new Map((await backend.status.listTasks(job.name, { states: ['QUEUED'] })).map((t) => [t.task, t]));
  return tasks.map((t) => ({ ...t, pool: queueFor(records.get(t.task) ?? {}, job) }));
}

/** Task numbers named in the message: the first few of a retry of thousands. */
const NAMED = 20;

function listed(tasks: readonly number[]): string {
  return tasks.length > NAMED ? `${tasks.slice(0, NAMED).join(', ')} and ${tasks.length - NAMED} more` : tasks.join(', ');
}
