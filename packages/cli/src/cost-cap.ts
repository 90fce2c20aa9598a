/**
 * The gq commands' side of the cost cap (common/src/cost/cap.ts): every command that reconciles a
 * job (status, --wait, retry) checks it; once it is reached the job's groups go to 0 (busy
 * instances are protected from scale-in: their running tasks finish) and no worker is started.
 */
import { capState, cents, formatUsd, onDemandPrice, retriedCost, UserError, type Backend, type CapState, type InstanceRecord, type JobRecord } from '@gq/common';
import type { CommandContext } from './context.js';
import { priceTable, slotsOf } from './cost-report.js';

/** The commands' price of a type where an instance recorded none: the on-demand table's for `region` (0 locally). */
function tablePrice(job: JobRecord, region: string | undefined): (type: string) => number | undefined {
  const table = priceTable();
  return (type) => (job.backend === 'local' ? 0 : region ? onDemandPrice(table, region, type) : undefined);
}

/**
 * The job's cap state by the commands' prices (the instances' own, else the table's for `region`).
 * Reached too when the job's `capStop` says so (an agent saw it first, at its prices).
 */
export function capOf(job: JobRecord, instances: readonly InstanceRecord[], region: string | undefined, now = Date.now()): CapState | undefined {
  if (job.maxCost === undefined) return undefined;
  const cap = capState(job, instances, now, { priceOf: tablePrice(job, region), slots: (t) => slotsOf(job, t) });
  return cap && job.capStop ? { ...cap, reached: true } : cap;
}

/**
 * At the cap: the groups go to 0, and the job's `capStop` is recorded (when nobody did yet) so
 * that its agents see it at their next read of the job. Returns the state (undefined: no cap).
 */
export async function stopAtCap(ctx: CommandContext, backend: Backend, job: JobRecord, instances: readonly InstanceRecord[]): Promise<CapState | undefined> {
  const cap = capOf(job, instances, ctx.config.region);
  if (!cap?.reached) return cap;
  ctx.log.info({ job: job.name, maxCost: cap.maxCost, spend: cap.spend, committed: cap.committed }, 'the job reached its cost cap: its groups go to 0');
  if (!job.capStop) {
    const stop = { at: new Date().toISOString(), maxCost: cap.maxCost, spend: cap.spend, committed: cap.committed, next: cap.next, by: 'gq' };
    await backend.status.markCapReached(job.name, stop);
  }
  await backend.fleet.stop(job.name);
  return cap;
}

export function capLines(name: string, cap: CapState, left: number): string[] {
  if (!cap.reached) return [`  Cost cap: ${formatUsd(cap.maxCost)} (${formatUsd(cap.spend)} spent, ${formatUsd(cap.committed)} committed to running tasks)`];
  return [
    `  Stopped at the cost cap ${formatUsd(cap.maxCost)}: ${formatUsd(cap.spend)} spent + ${formatUsd(cap.committed)} committed to running tasks` +
      (cap.next > 0 ? ` + ${formatUsd(cap.next)} for the next task` : '') +
      `; no new instance or task, running tasks finish; ${left} task(s) left.`,
    `    Raise the cap and go on with: gq resume ${name} --max-cost USD`,
  ];
}

/**
 * `gq retry` of a job with a cap: refused, changing nothing, when the job is stopped at its cap,
 * or when the spend, the running tasks' commitment and the estimate of the failed tasks run
 * again (their type's mean run time × price) reach it.
 */
export async function refuseRetryOverCap(ctx: CommandContext, backend: Backend, job: JobRecord): Promise<void> {
  if (job.maxCost === undefined) return;
  const [instances, failed] = await Promise.all([backend.status.listInstances(job.name), backend.status.listTasks(job.name, { states: ['FAILED'] })]);
  const cap = capOf(job, instances, ctx.config.region)!;
  const retried = retriedCost(failed, instances, { priceOf: tablePrice(job, ctx.config.region), slots: (t) => slotsOf(job, t) });
  if (!cap.reached && cents(cap.spend + cap.committed + retried) < cap.maxCost) return;
  const figures = `${formatUsd(cap.spend)} spent + ${formatUsd(cap.committed)} committed to running tasks + about ${formatUsd(retried)} for the ${failed.length} failed task(s) run again`;
  throw new UserError(`Job ${job.name} ${cap.reached ? 'is stopped at' : 'would reach'} its cost cap ${formatUsd(cap.maxCost)}: ${figures}.`, {
    hint: `Raise the cap first: gq resume ${job.name} --max-cost USD, then gq retry ${job.name} --failed.`,
  });
}
