/**
 * `gq submit --dry-run`: the plan of a checked job (its groups, instances, slots, AMI, Spot or
 * not) and, given `--estimate-runtime` or `--like <previous job>`, a cost range; nothing is
 * created or written. `--max-cost` uses the same range to refuse a job at submit.
 */
import { availableParallelism } from 'node:os';
import { addRanges, estimateRange, formatUsd, jobSlots, meanTaskSeconds, onDemandPrice, parseDuration, typeVolumeGb, UserError, volumeHourly, type CostRange, type Config } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { priceTable, slotsOf } from '../cost-report.js';

export interface EstimateArgs {
  /** Run time of one task, e.g. "30m". */
  estimateRuntime?: string;
  /** A previous job whose tasks' run times to learn from. */
  like?: string;
}

export interface TypePlan {
  instanceType: string;
  tasks: number;
  instances: number;
  slots: number;
  ami: string;
  spot: boolean;
  pricePerHour: number | null;
  /** GB of the root volume counted in the estimate: the previous job's (--like), else 0 (the AMI is not looked up). */
  rootVolumeGb: number;
  taskSeconds: number | null;
  estimate: CostRange | null;
}

export interface JobPlan {
  name: string;
  backend: Config['backend'];
  total: number;
  types: TypePlan[];
  estimate: CostRange | null;
  /** Where the run time came from. */
  runtimeFrom: string | null;
  /** Spot jobs: interruptions of one task after which it runs on the type's on-demand group (job/on-demand.ts). */
  spotInterruptions?: number;
}

/** The run time per task of each type: given, or the mean of a previous job's attempts (and its instances' root volumes). */
async function taskSecondsOf(
  ctx: CommandContext,
  a: EstimateArgs,
): Promise<{ of: (type: string) => number | undefined; from: string | null; volumeGb?: (type: string) => number }> {
  if (a.estimateRuntime !== undefined) {
    const s = parseDuration(a.estimateRuntime);
    if (s === undefined || s <= 0) {
      throw new UserError(`--estimate-runtime "${a.estimateRuntime}" is not a duration above 0.`, { hint: 'Give the run time of one task, e.g. --estimate-runtime 30m (or 90s, 2h, 1h30m).' });
    }
    return { of: () => s, from: `--estimate-runtime ${a.estimateRuntime}` };
  }
  if (a.like === undefined) return { of: () => undefined, from: null };
  const backend = await openCliBackend(ctx.config);
  try {
    const instances = await backend.status.listInstances(a.like);
    const all = meanTaskSeconds(instances);
    if (all === undefined) {
      throw new UserError(`Job ${a.like} has no finished task to learn run times from.`, { hint: 'Give --estimate-runtime DURATION instead, or a job that ran (gq status lists them).' });
    }
    const gb = typeVolumeGb(instances[0]?.instanceType ?? '', instances);
    return {
      of: (type) => meanTaskSeconds(instances.filter((r) => r.instanceType === type)) ?? all,
      from: `the tasks of job ${a.like}`,
      volumeGb: (type) => typeVolumeGb(type, instances, gb),
    };
  } finally {
    await backend.close();
  }
}

export async function jobPlan(ctx: CommandContext, p: { name: string; byType: Record<string, number>; total: number }, a: EstimateArgs): Promise<JobPlan> {
  const c = ctx.config;
  const { of, from, volumeGb } = await taskSecondsOf(ctx, a);
  const region = c.backend === 'aws' ? (await (await import('../aws/region.js')).findRegion(c))?.region : undefined;
  const table = priceTable();
  const { amiSettingFor } = await import('../aws/ami.js');
  const slotsJob = { slots: jobSlots(c.slots, Object.keys(p.byType)) };
  const types = Object.entries(p.byType).map(([type, tasks]): TypePlan => {
    const slots = slotsOf(slotsJob, type);
    const instances = c.backend === 'aws' ? Math.min(c.maxInstances, Math.ceil(tasks / slots)) : Math.min(tasks, c.workers ?? availableParallelism());
    const price = c.backend === 'local' ? 0 : region ? onDemandPrice(table, region, type) : undefined;
    const taskSeconds = of(type);
    const idleSeconds = c.idle ?? (c.backend === 'local' ? 3 : 120);
    const rootVolumeGb = c.backend === 'aws' ? (volumeGb?.(type) ?? 0) : 0;
    // The root volume is billed beside the instance: its hourly price added to the instance's.
    const rate = price === undefined ? undefined : price + volumeHourly(rootVolumeGb);
    const estimate = taskSeconds === undefined ? undefined : estimateRange({ tasks, taskSeconds, instances, slots, pricePerHour: rate, idleSeconds });
    return {
      instanceType: type,
      tasks,
      instances,
      slots,
      ami: c.backend === 'aws' ? amiSettingFor(c.ami, type) : 'this machine',
      spot: c.backend === 'aws' && c.spot,
      pricePerHour: price ?? null,
      rootVolumeGb,
      taskSeconds: taskSeconds ?? null,
      estimate: estimate ?? null,
    };
  });
  const estimate = from ? addRanges(types.map((t) => t.estimate ?? undefined)) : undefined;
  const fallback = c.backend === 'aws' && c.spot && c.spotInterruptions > 0 ? { spotInterruptions: c.spotInterruptions } : {};
  return { name: p.name, backend: c.backend, total: p.total, types, estimate: estimate ?? null, runtimeFrom: from, ...fallback };
}

/** --max-cost at submit: a job that cannot stay under the cap, even at the low end, is refused. */
export function checkCap(plan: JobPlan, maxCost: number | undefined): void {
  if (maxCost === undefined || !plan.estimate || plan.estimate.low <= maxCost) return;
  throw new UserError(`Job ${plan.name} would cost at least ${formatUsd(plan.estimate.low)} (estimate ${formatUsd(plan.estimate.low)} – ${formatUsd(plan.estimate.high)}, from ${plan.runtimeFrom}), over --max-cost ${formatUsd(maxCost)}.`, {
    hint: 'Raise --max-cost, run fewer tasks, or check the estimate with gq submit --dry-run.',
  });
}

export function planLines(plan: JobPlan, maxCost: number | undefined): string[] {
  const lines = [`Dry run: job ${plan.name} on the ${plan.backend} backend, ${plan.total} tasks. Nothing was created.`];
  for (const t of plan.types) {
    const price = t.pricePerHour === null ? 'price unknown' : `$${t.pricePerHour}/h${t.spot ? ' on-demand (Spot costs less)' : ''}`;
    const est = t.estimate ? `, ${formatUsd(t.estimate.low)} – ${formatUsd(t.estimate.high)}${t.rootVolumeGb ? ` (with its ${t.rootVolumeGb} GB root volume)` : ''}` : '';
    lines.push(`  ${t.instanceType}: ${t.tasks} tasks, up to ${t.instances} instance(s) × ${t.slots} slot(s), AMI ${t.ami}, ${plan.backend === 'local' ? 'local' : t.spot ? 'Spot' : 'on-demand'}, ${price}${est}`);
  }
  if (plan.spotInterruptions) lines.push(`  On-demand fallback: after ${plan.spotInterruptions} Spot interruptions of one task, its next attempt runs on a second group per type, on-demand`);
  if (plan.estimate) lines.push(`  Estimated cost: ${formatUsd(plan.estimate.low)} – ${formatUsd(plan.estimate.high)} (run time from ${plan.runtimeFrom})`);
  else if (plan.runtimeFrom) lines.push('  Estimated cost: unknown (no price for an instance type; see gq prices update)');
  else lines.push('  For a cost estimate give --estimate-runtime DURATION (one task\'s run time) or --like PREVIOUS_JOB.');
  if (maxCost !== undefined) lines.push(`  Cost cap: ${formatUsd(maxCost)}${plan.estimate && plan.estimate.high > maxCost ? ' (the high end of the estimate is over it: the job may stop at the cap)' : ''}`);
  return lines;
}
