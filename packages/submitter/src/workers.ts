/** Starting workers for a job, and restoring them when a later command finds work and none left. */
import { availableParallelism } from 'node:os';
import type { Backend, FleetGroup, JobRecord, TaskQueue } from '@gq/common';
import type { CommandContext } from './context.js';
import { desiredForBacklog } from '@gq/common/aws/scaling';
import { splitWorkers } from './scaling.js';

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
          Object.entries(pendingByType).map(([t, n]) => [t, desiredForBacklog({ pending: n, slotsPerInstance: 1, max: ctx.config.maxInstances })]),
        );
  const out: Record<string, number> = {};
  for (const [type, n] of Object.entries(want)) {
    if (n <= 0) continue;
    const g = await backend.fleet.ensureCapacity(job, type, n);
    out[type] = g.desired;
  }
  return out;
}

export interface Reconciled {
  /** Instance types whose workers were started again. */
  restarted: string[];
  /** Tasks recorded as failed because their message reached the dead-letter queue. */
  deadLettered: number[];
  /** Whether the job's record changed (read it again to show it). */
  changed: boolean;
}

/**
 * If a type has queued messages and no live worker (all left, crashed or were killed), start
 * workers again, unless that type's workers failed their install (that would only repeat).
 * When a type's queue is empty, tasks whose message went to the dead-letter queue are recorded
 * as failed (see failDeadLettered).
 */
/** Workers that could not start (install or boot failed): restarting them would only repeat it. */
export const FAILED_TO_START: ReadonlySet<string> = new Set(['INSTALL_FAILED', 'BOOT_FAILED']);

/** `described`: the job's groups when the caller has just described them (fleetReport). */
export async function reconcile(ctx: CommandContext, backend: Backend, job: JobRecord, described?: FleetGroup[]): Promise<Reconciled> {
  const restarted: string[] = [];
  const deadLettered: number[] = [];
  const result = (): Reconciled => ({ restarted, deadLettered, changed: deadLettered.length > 0 });
  const { counts } = job;
  if (counts.queued + counts.running === 0) {
    await dropFinishedLicence(ctx, backend, job);
    return result();
  }
  if (job.cancelRequested) return result();
  const instances = await backend.status.listInstances(job.name);
  const groups = described ?? (await backend.fleet.describe(job.name));
  for (const type of Object.keys(job.instanceTypes)) {
    const mine = instances.filter((i) => i.instanceType === type);
    if (mine.some((i) => FAILED_TO_START.has(i.state)) && !mine.some((i) => i.state === 'READY' || i.state === 'BUSY' || i.state === 'IDLE')) continue;
    const group = groups.find((g) => g.instanceType === type);
    const live = group ? group.instances.filter((i) => i.state !== 'STOPPED' && i.state !== 'Terminating' && i.state !== 'Terminated').length : 0;
    const queue = await backend.queues.open(job.name, type).catch(() => undefined);
    if (!queue) continue; // a submit that stopped before enqueueing: re-running it creates the queue
    // With workers alive, reading the queue is only for the dead-letter check: best effort.
    const depth = live > 0 ? await queue.depth().catch(() => undefined) : await queue.depth();
    const pending = depth ? depth.visible + depth.delayed + depth.inFlight : undefined;
    if (pending === 0) {
      const failed = await failDeadLettered(backend, job, queue).catch((e: unknown) => {
        ctx.log.warn({ err: e, type }, 'could not check the dead-letter queue');
        return [];
      });
      deadLettered.push(...failed);
    }
    if (live > 0 || !pending) continue;
    await startWorkers(ctx, backend, job, { [type]: pending });
    restarted.push(type);
  }
  return result();
}

/**
 * A finished job (nothing queued or running) needs its licence no more: delete it, so that it
 * does not wait for its expiry (the last agent deletes it too; either is enough). `gq retry`
 * stores it again when given --license.
 */
export async function dropFinishedLicence(ctx: CommandContext, backend: Backend, job: JobRecord): Promise<void> {
  if (!job.licenseKey) return;
  await backend.secrets.deleteLicence(job.name).catch((e: unknown) => ctx.log.warn({ err: e }, 'could not delete the licence of a finished job'));
}

/**
 * A message that was received too many times without its task finishing goes to the queue's
 * dead-letter queue, and no worker ever receives it again: its task would stay QUEUED (or RUNNING
 * under a dead worker's lease) for ever, `gq status` would not say why and `--wait` would never
 * end. Called when the type's queue holds nothing any more (so no other message can still bring
 * such a task back), this records each of those tasks as FAILED with the reason, which
 * `gq status` shows and `gq retry --failed` undoes. A task whose worker still holds a live lease
 * is left to it. Messages of tasks that are already final are left where they are.
 * No attempt is counted for it (StatusStore.failUnrun). Returns the tasks failed.
 */
export async function failDeadLettered(backend: Backend, job: JobRecord, queue: TaskQueue): Promise<number[]> {
  const reason =
    'its queue message was delivered too many times without the task finishing and went to the dead-letter queue, ' +
    `so no worker will receive it again; run it again with: gq retry ${job.name} --failed`;
  const failed: number[] = [];
  for (const n of await queue.deadLetters()) {
    if (await backend.status.failUnrun(job.name, n, reason)) failed.push(n);
  }
  return failed;
}
