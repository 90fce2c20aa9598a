/** Starting workers for a job, and restoring them when a later command finds work and none left. */
import { availableParallelism } from 'node:os';
import { failDeadLettered, groupOf, poolsOf, queueFor, sleep, slotsOf, type Backend, type FleetGroup, type JobRecord, type Pool, type TaskQueue } from '@gq/common';

export { failDeadLettered };
import type { CommandContext } from './context.js';
import { desiredForBacklog } from '@gq/common/aws/scaling';
import { defaultLocalWorkers, splitWorkers } from './scaling.js';
import { stopAtCap } from './cost-cap.js';

export async function startWorkers(
  ctx: CommandContext,
  backend: Backend,
  job: JobRecord,
  pendingByType: Record<string, number>,
  /** Which of the types' groups (a Spot job's on-demand fallback: job/on-demand.ts); default their own. */
  pool: Pool = 'main',
): Promise<Record<string, number>> {
  // Each worker runs up to its type's slots at once: ceil(pending ÷ slots) workers are enough.
  const slots = Object.fromEntries(Object.keys(pendingByType).map((t) => [t, slotsOf(job, t)]));
  const want: Record<string, number> =
    backend.name === 'local'
      ? splitWorkers(pendingByType, ctx.config.workers ?? defaultLocalWorkers(availableParallelism(), slots), slots)
      : Object.fromEntries(
          Object.entries(pendingByType).map(([t, n]) => [t, desiredForBacklog({ pending: n, slotsPerInstance: slots[t]!, max: ctx.config.maxInstances })]),
        );
  const out: Record<string, number> = {};
  for (const [type, n] of Object.entries(want)) {
    if (n <= 0) continue;
    const g = await backend.fleet.ensureCapacity(job, type, n, pool);
    out[type] = g.desired;
    // A Spot job's on-demand group exists from the start, at 0: the Spot agent that sends a task
    // there raises it (agent/src/on-demand.ts), and an agent may not create groups.
    if (pool === 'main' && poolsOf(job).includes('on-demand')) await backend.fleet.ensureGroup?.(job, type, 'on-demand');
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
  /** The job reached its cost cap (cost-cap.ts): its groups were set to 0, no worker started. */
  capped?: boolean;
}

/** Workers that could not start (install or boot failed): restarting them would only repeat it. */
export const FAILED_TO_START: ReadonlySet<string> = new Set(['INSTALL_FAILED', 'BOOT_FAILED']);

/**
 * If a type has queued messages and no live worker (all left, crashed or were killed), start
 * workers again, unless that type's workers failed their install (that would only repeat).
 * When a type's queue is empty, tasks whose message went to the dead-letter queue are recorded
 * as failed (see failDeadLettered), and, with no worker left, QUEUED tasks whose message is gone
 * are sent again (then workers started). A finished job loses its licence, workers and queues
 * (removeFinishedFleet).
 * `described`: the job's groups when the caller has just described them (fleetReport).
 */
export async function reconcile(ctx: CommandContext, backend: Backend, job: JobRecord, described?: FleetGroup[]): Promise<Reconciled> {
  const restarted: string[] = [];
  const deadLettered: number[] = [];
  const result = (): Reconciled => ({ restarted, deadLettered, changed: deadLettered.length > 0 });
  const { counts } = job;
  if (counts.queued + counts.running === 0) {
    await dropFinishedLicence(ctx, backend, job);
    await removeFinishedFleet(ctx, backend, job);
    return result();
  }
  if (job.cancelRequested) return result();
  const instances = await backend.status.listInstances(job.name);
  if ((await stopAtCap(ctx, backend, job, instances))?.reached) return { ...result(), capped: true };
  const groups = described ?? (await backend.fleet.describe(job.name));
  for (const type of Object.keys(job.instanceTypes)) {
    const mine = instances.filter((i) => i.instanceType === type);
    if (mine.some((i) => FAILED_TO_START.has(i.state)) && !mine.some((i) => i.state === 'READY' || i.state === 'BUSY' || i.state === 'IDLE')) continue;
    // Each of the type's pools: its own queue and group, and a Spot job's on-demand ones (job/on-demand.ts).
    const lanes: Lane[] = [];
    for (const pool of poolsOf(job)) {
      const group = groupOf(groups, type, pool);
      const live = group ? group.instances.filter((i) => i.phase === 'starting' || i.phase === 'running').length : 0;
      const queue = await backend.queues.open(job.name, type, pool).catch(() => undefined);
      if (!queue) continue; // a submit that stopped before enqueueing: re-running it creates the queue
      // With workers alive, reading the queue is only for the dead-letter check: best effort.
      const depth = live > 0 ? await queue.depth().catch(() => undefined) : await queue.depth();
      lanes.push({ pool, live, queue, pending: depth ? depth.visible + depth.delayed + depth.inFlight : undefined });
    }
    let checked = lanes.length > 0;
    for (const lane of lanes.filter((l) => l.pending === 0)) {
      const failed = await failDeadLettered(backend.status, job, lane.queue).catch((e: unknown) => {
        ctx.log.warn({ err: e, type }, 'could not check the dead-letter queue');
        return undefined;
      });
      deadLettered.push(...(failed ?? []));
      checked &&= failed !== undefined;
    }
    if (checked && lanes.every((l) => l.pending === 0 && l.live === 0) && counts.queued > deadLettered.length) {
      // No worker, no message, yet the store holds QUEUED tasks (the dead-lettered ones are
      // FAILED now): their messages are gone (SQS drops a message after its retention
      // period). Live workers do this themselves (the one that stays when idle, agent
      // idle-leave.ts); the tasks are read only in this rare case.
      const lost = await resendQueued(backend, job, type, (pool) => lanes.find((l) => l.pool === pool)?.queue);
      if (lost.length > 0) ctx.log.warn({ type, tasks: lost.length }, 'queued tasks had no message in the queue: sent them again');
      for (const lane of lanes) lane.pending = lost.filter((t) => t.pool === lane.pool).length;
    }
    for (const lane of lanes) {
      if (lane.live > 0 || !lane.pending) continue;
      await startWorkers(ctx, backend, job, { [type]: lane.pending }, lane.pool);
      if (!restarted.includes(type)) restarted.push(type);
    }
  }
  return result();
}

/** One of a type's pools as reconcile sees it: live workers of its group, its queue, and the messages in it. */
interface Lane {
  pool: Pool;
  live: number;
  queue: TaskQueue;
  pending: number | undefined;
}

/**
 * Send again the message of every QUEUED task of `type` (their messages were lost), each to the
 * queue of its pool (queueFor: a task moved to on-demand stays there). A duplicate is harmless: a
 * second delivery finds the task claimed or final. Returns the tasks sent.
 */
export async function resendQueued(
  backend: Backend,
  job: JobRecord,
  type: string,
  queueOf: (pool: Pool) => TaskQueue | undefined,
): Promise<{ task: number; pool: Pool }[]> {
  const tasks = (await backend.status.listTasks(job.name, { states: ['QUEUED'] }))
    .filter((t) => t.instanceType === type)
    .map((t) => ({ task: t.task, pool: queueFor(t, job) }));
  const sent: { task: number; pool: Pool }[] = [];
  for (const pool of poolsOf(job)) {
    const mine = tasks.filter((t) => t.pool === pool);
    const queue = queueOf(pool);
    if (mine.length === 0 || !queue) continue;
    await queue.send(mine.map((t) => t.task));
    sent.push(...mine);
  }
  return sent;
}

/** Every task final: nothing queued or running, and all of them created (not a submit half way). */
export function isFinished(job: JobRecord): boolean {
  const c = job.counts;
  return c.queued + c.running === 0 && c.succeeded + c.failed + c.cancelled >= job.total;
}

/** Group instances that are still there: running, or on their way out but not gone. */
export function stillThere(groups: FleetGroup[]): number {
  return groups.reduce((n, g) => n + g.instances.filter((i) => i.phase !== 'gone').length, 0);
}

export type FleetRemoval = 'removed' | 'already-removed' | 'not-finished' | 'workers-leaving' | 'failed';

/**
 * A finished job needs its workers and queues no more: delete its groups, launch templates (and
 * on AWS its IAM role and instance profile, with the fleet: aws/backend.ts) and its queues, so
 * that a user running many jobs never reaches the account's limits (500 Auto Scaling groups and
 * 5,000 launch templates a region, 1,000 IAM roles) without `gq clean`, which remains for the
 * status items and the artifacts. Done by the gq commands that look at a job (status, results,
 * --wait), not by the agents: their per-job role may not delete groups, queues or roles
 * (infra/gq.yaml), and a role cannot delete itself.
 *
 * Only once every worker has left on its own: a worker of a finished job is on its way out
 * (idle period, then it uploads its boot log, deletes the job's licence and terminates itself
 * with its role's credentials). Deleting its group, role or queue under it would lose those, so
 * while an instance is still there nothing is removed and the next command tries again;
 * `waitMs` (--wait) waits that long for them first. Queues go last, so a job whose first queue is
 * gone was removed already: one GetQueueUrl on later looks. `gq retry` creates again what the
 * job needs. Best effort: a failure is logged and the next command tries again.
 */
export async function removeFinishedFleet(
  ctx: CommandContext,
  backend: Backend,
  job: JobRecord,
  o: { waitMs?: number; pollMs?: number; onWait?: (leaving: number) => void } = {},
): Promise<FleetRemoval> {
  if (!isFinished(job)) return 'not-finished';
  const types = Object.keys(job.instanceTypes);
  try {
    const present = await Promise.all(types.map((t) => backend.queues.open(job.name, t).then(() => true, () => false)));
    if (!present.some(Boolean)) return 'already-removed';
    const until = Date.now() + (o.waitMs ?? 0);
    let told = false;
    // A local worker takes nothing from the removal (it stops an idle worker with SIGTERM; its
    // logs stay on this machine): only instances that leave with the job's role are waited for.
    for (; backend.name === 'aws'; ) {
      const leaving = stillThere(await backend.fleet.describe(job.name));
      if (leaving === 0) break;
      if (Date.now() >= until) {
        ctx.log.info({ job: job.name, leaving }, 'workers of the finished job are still leaving; the next gq command removes its groups and queues');
        return 'workers-leaving';
      }
      if (!told) o.onWait?.(leaving);
      told = true;
      await sleep(Math.min(o.pollMs ?? 1000, Math.max(0, until - Date.now())));
    }
    await backend.fleet.remove(job.name);
    // The type's own queue last: its presence is what says the job is not removed yet (above).
    for (const type of types) for (const pool of [...poolsOf(job)].reverse()) await backend.queues.remove(job.name, type, pool);
    ctx.log.info({ job: job.name }, 'removed the workers and queues of the finished job');
    return 'removed';
  } catch (e) {
    ctx.log.warn({ err: e, job: job.name }, 'could not remove the workers and queues of the finished job; the next gq command tries again');
    return 'failed';
  }
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
