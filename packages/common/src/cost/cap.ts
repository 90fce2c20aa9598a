/**
 * The cost cap (`--max-cost`): reached when the spend so far, plus what the running instances
 * are committed to (each busy slot to the expected end of its task), plus one more task when
 * tasks are left (the next one anybody would take), reaches the cap. Whoever sees it first stops
 * the job's growth: an agent takes no new task, a gq command sets the groups to 0. The same rule
 * for both, from the instance records alone (a busy slot is taken to have its whole mean task
 * ahead of it: the cap errs on the early side). Pure.
 */
import type { InstanceRecord, JobRecord } from '../job/model.js';
import { cents, instanceCharge, volumeHourly } from './billing.js';
import { jobCost, meanTaskSeconds, typePrice, typeVolumeGb } from './spend.js';

export interface CapState {
  maxCost: number;
  spend: number;
  committed: number;
  /** The next task's share, when tasks are left and a run time is known. */
  next: number;
  reached: boolean;
}

export function capState(
  job: Pick<JobRecord, 'maxCost' | 'instanceTypes' | 'counts'>,
  instances: readonly InstanceRecord[],
  now: number,
  opts: { priceOf?: (type: string) => number | undefined; slots?: (type: string) => number } = {},
): CapState | undefined {
  if (job.maxCost === undefined) return undefined;
  const types = Object.keys(job.instanceTypes);
  const busy = (type: string) => instances.filter((r) => r.instanceType === type && r.state === 'BUSY' && r.endedAt === undefined).map(() => 0);
  const cost = jobCost({ instances, now, types, work: (t) => ({ queued: 0, running: busy(t) }), priceOf: opts.priceOf, slots: opts.slots });
  let next = 0;
  if (job.counts.queued > 0) {
    for (const t of types) {
      const mean = meanTaskSeconds(instances.filter((r) => r.instanceType === t));
      const price = ratePerHour(t, instances, opts.priceOf);
      if (mean !== undefined && price !== undefined) next = Math.max(next, instanceCharge(mean, price) / Math.max(1, opts.slots?.(t) ?? 1));
    }
  }
  return { maxCost: job.maxCost, spend: cost.spend, committed: cost.committed, next, reached: cents(cost.spend + cost.committed + next) >= job.maxCost };
}

/**
 * What running `tasks` again would cost: per type, their count × the mean run time of the type's
 * finished attempts × its price ÷ slots (0 for a type with no run time or price known yet).
 */
export function retriedCost(
  tasks: readonly { instanceType: string }[],
  instances: readonly InstanceRecord[],
  opts: { priceOf?: (type: string) => number | undefined; slots?: (type: string) => number } = {},
): number {
  let usd = 0;
  for (const type of new Set(tasks.map((t) => t.instanceType))) {
    const n = tasks.filter((t) => t.instanceType === type).length;
    const mean = meanTaskSeconds(instances.filter((r) => r.instanceType === type));
    const price = ratePerHour(type, instances, opts.priceOf);
    if (mean !== undefined && price !== undefined) usd += instanceCharge(n * mean, price) / Math.max(1, opts.slots?.(type) ?? 1);
  }
  return usd;
}

/** USD per hour of an instance of the type with its root volume (undefined: price unknown). */
export function ratePerHour(type: string, instances: readonly InstanceRecord[], priceOf?: (t: string) => number | undefined): number | undefined {
  const price = typePrice(type, instances, priceOf);
  return price === undefined ? undefined : price + volumeHourly(typeVolumeGb(type, instances));
}
