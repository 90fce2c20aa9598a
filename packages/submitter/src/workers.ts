/** Starting workers for a job, and restoring them when a later command finds work and none left. */
import { availableParallelism } from 'node:os';
import type { Backend, JobRecord } from '@gq/common';
import type { CommandContext } from './context.js';
import { desiredInstances, splitWorkers } from './scaling.js';

export async function startWorkers(
  ctx: CommandContext,
  backend: Backend,
  job: JobRecord,
  pendingByType: Record<string, number>,
): Promise<Record<string, number>> {
  const want: Record<string, number> =
    backend.name === 'local'
      ? splitWorkers(pendingByType, ctx.config.workers ?? availableParallelism())
      : Object.fromEntries(
          Object.entries(pendingByType).map(([t, n]) => [t, desiredInstances(n, ctx.config.maxInstances)]),
        );
  const out: Record<string, number> = {};
  for (const [type, n] of Object.entries(want)) {
    if (n <= 0) continue;
    const g = await backend.fleet.ensureCapacity(job, type, n);
    out[type] = g.desired;
  }
  return out;
}

/**
 * If a type has queued messages and no live worker (all left, crashed or were killed), start
 * workers again, unless that type's workers failed their install (that would only repeat).
 * Returns the types restarted.
 */
export async function reconcile(ctx: CommandContext, backend: Backend, job: JobRecord): Promise<string[]> {
  if (job.cancelRequested) return [];
  const { counts } = job;
  if (counts.queued + counts.running === 0) return [];
  const instances = await backend.status.listInstances(job.name);
  const groups = await backend.fleet.describe(job.name);
  const restarted: string[] = [];
  for (const type of Object.keys(job.instanceTypes)) {
    const mine = instances.filter((i) => i.instanceType === type);
    if (mine.some((i) => i.state === 'INSTALL_FAILED') && !mine.some((i) => i.state === 'READY' || i.state === 'BUSY' || i.state === 'IDLE')) continue;
    const group = groups.find((g) => g.instanceType === type);
    const live = group ? group.instances.filter((i) => i.state !== 'STOPPED' && i.state !== 'Terminating' && i.state !== 'Terminated').length : 0;
    if (live > 0) continue;
    const queue = await backend.queues.open(job.name, type);
    const depth = await queue.depth();
    const pending = depth.visible + depth.delayed + depth.inFlight;
    if (pending === 0) continue;
    await startWorkers(ctx, backend, job, { [type]: pending });
    restarted.push(type);
  }
  return restarted;
}
