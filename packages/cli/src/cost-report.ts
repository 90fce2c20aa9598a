/**
 * The cost part of `gq status`: the figures of common/src/cost from the records status reads
 * anyway (the job, its instance records, its running tasks), so that status stays a constant
 * number of reads; the lines it prints and the `cost` object of `--json`. Prices: what each
 * instance recorded, else the on-demand table (`gq prices update`'s copy over the shipped one).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cents,
  configDir,
  formatUsd,
  instanceCharge,
  jobCost,
  mergePriceTables,
  onDemandPrice,
  priceTableSchema,
  secondsBetween,
  shippedPriceTable,
  slotsOf,
  spotSaving,
  typeVolumeGb,
  volumeHourly,
  type InstanceRecord,
  type JobCost,
  type JobRecord,
  type PriceTable,
  type TaskRecord,
  type TypeWork,
} from '@gq/common';

/** Where `gq prices update` keeps the table it fetched. */
export const updatedPricesFile = (): string => join(configDir(), 'on-demand-prices.json');

/** The shipped table, with the fetched one's regions over it when there is one. */
export function priceTable(file = updatedPricesFile()): PriceTable {
  const shipped = shippedPriceTable();
  if (!existsSync(file)) return shipped;
  const parsed = priceTableSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? mergePriceTables(shipped, parsed.data) : shipped;
}

/**
 * The queued tasks of each type. One type: the job's count. Several: the count shared out by what
 * each type has left (its tasks less the attempts its instances ran and the running ones).
 */
export function workOf(job: JobRecord, instances: readonly InstanceRecord[], running: readonly TaskRecord[], now: number): (type: string) => TypeWork {
  const types = Object.keys(job.instanceTypes);
  const runningOf = (type: string) => running.filter((t) => t.instanceType === type).map((t) => secondsBetween(t.startedAt, new Date(now).toISOString()) ?? 0);
  const rest = (type: string) =>
    Math.max(0, (job.instanceTypes[type] ?? 0) - instances.filter((r) => r.instanceType === type).reduce((a, r) => a + (r.tasksRun ?? 0), 0) - runningOf(type).length);
  const restAll = types.reduce((a, t) => a + rest(t), 0);
  return (type) => {
    const queued = types.length === 1 ? job.counts.queued : restAll > 0 ? Math.round((job.counts.queued * rest(type)) / restAll) : 0;
    return { queued, running: runningOf(type) };
  };
}

export { slotsOf };

export interface CostView {
  cost: JobCost;
  /** Against on-demand (the price table), when the job ran Spot instances (spotSaving). */
  saving: ReturnType<typeof spotSaving>;
  table: PriceTable;
  region: string | undefined;
  /** The instance price gq shows for a type (undefined: unknown). */
  typePrice: (type: string) => number | undefined;
  /** GB of the type's root volume (its instances' recorded size), and its USD per hour (gp3). */
  volumeGb: (type: string) => number;
  volumeRate: (type: string) => number;
  slots: (type: string) => number;
}

export function costView(job: JobRecord, instances: readonly InstanceRecord[], running: readonly TaskRecord[], region: string | undefined, now = Date.now()): CostView {
  const table = priceTable();
  const priceOf = (type: string) => (job.backend === 'local' ? 0 : region ? onDemandPrice(table, region, type) : undefined);
  const slots = (type: string) => slotsOf(job, type);
  const cost = jobCost({ instances, now, types: Object.keys(job.instanceTypes), work: workOf(job, instances, running, now), slots, priceOf });
  const typePrice = (type: string) => {
    const own = instances.filter((r) => r.instanceType === type && r.pricePerHour !== undefined).map((r) => r.pricePerHour!);
    return own.length ? own.reduce((a, b) => a + b, 0) / own.length : priceOf(type);
  };
  const onDemand = (type: string) => (region ? onDemandPrice(table, region, type) : undefined);
  const volumeGb = (type: string) => typeVolumeGb(type, instances);
  const volumeRate = (type: string) => volumeHourly(volumeGb(type));
  return { cost, saving: spotSaving(instances, now, onDemand), table, region, typePrice, volumeGb, volumeRate, slots };
}

/** A task's share of its instance's cost, its root volume included (undefined: not run, or price unknown). */
export function taskShare(v: CostView, t: TaskRecord, now = Date.now()): number | undefined {
  const secs = secondsBetween(t.startedAt, t.finishedAt ?? (t.state === 'RUNNING' ? new Date(now).toISOString() : undefined));
  const price = v.typePrice(t.instanceType);
  return secs === undefined || price === undefined ? undefined : cents(instanceCharge(secs, price + v.volumeRate(t.instanceType)) / v.slots(t.instanceType));
}

const pct = (f: number | undefined) => (f === undefined ? 'n/a' : `${Math.round(f * 100)}%`);
const dur = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${Math.round(s / 60)}m` : `${Math.round(s)}s`);

export function costJson(v: CostView) {
  const c = v.cost;
  const round = (x: { usd: number; seconds: number } | undefined) => (x ? { usd: cents(x.usd), seconds: Math.round(x.seconds) } : null);
  return {
    currency: 'USD',
    spend: cents(c.spend),
    toFinish: round(c.toFinish),
    committed: cents(c.committed),
    busyFraction: c.busyFraction ?? null,
    spotSaving: v.saving ? cents(v.saving.usd) : null,
    instancesWithoutPrice: c.priceUnknown,
    prices: { source: v.table.source, asOf: v.table.asOf, region: v.region ?? null },
    perType: c.perType.map((t) => ({
      instanceType: t.instanceType,
      pricePerHour: v.typePrice(t.instanceType) ?? null,
      slots: v.slots(t.instanceType),
      rootVolumeGb: v.volumeGb(t.instanceType),
      instances: t.instances,
      running: t.running,
      paidSeconds: t.paidSeconds,
      busySeconds: t.busySeconds,
      busyFraction: t.busyFraction ?? null,
      spend: cents(t.spend),
      instancesWithoutPrice: t.priceUnknown,
      meanTaskSeconds: t.meanTaskSeconds ?? null,
      tasksLeft: t.tasksLeft,
      toFinish: round(t.toFinish),
      committed: cents(t.committed),
      spotSaving: v.saving?.perType[t.instanceType] !== undefined ? cents(v.saving.perType[t.instanceType]!) : null,
    })),
  };
}

export type CostJson = ReturnType<typeof costJson>;

export function costLines(c: CostJson): string[] {
  if (c.perType.length > 0 && c.perType.every((t) => t.pricePerHour === 0)) return ['  Cost: none (workers on this machine)'];
  const finish = c.toFinish ? `about ${formatUsd(c.toFinish.usd)} more to finish${c.toFinish.seconds > 0 ? ` (~${dur(c.toFinish.seconds)})` : ''}` : 'no estimate to finish yet (no task has finished)';
  const unknown = c.instancesWithoutPrice ? `; ${c.instancesWithoutPrice} instance(s) at a price unknown, not counted` : '';
  const lines = [`  Cost: ${formatUsd(c.spend)} so far, ${finish}; busy ${pct(c.busyFraction ?? undefined)} of the paid time${unknown}`];
  if (c.spotSaving !== null) lines.push(`  Spot saved ${formatUsd(c.spotSaving)} against on-demand (the same instance-seconds at the price table's on-demand prices)`);
  for (const t of c.perType) {
    const price = t.pricePerHour === null ? 'price unknown' : `$${Number(t.pricePerHour.toFixed(5))}/h`;
    const est = t.toFinish ? `, ~${formatUsd(t.toFinish.usd)} to finish` : '';
    const saved = t.spotSaving !== null ? `, Spot saved ${formatUsd(t.spotSaving)}` : '';
    lines.push(`    ${t.instanceType}: ${price}, ${t.instances} instance(s) (${t.running} running), ${formatUsd(t.spend)} so far, busy ${pct(t.busyFraction ?? undefined)}${est}${saved}`);
  }
  return lines;
}
