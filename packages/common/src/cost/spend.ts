/**
 * A job's cost from its records at a time `now`: the spend so far (instances billed per second,
 * their volumes), the busy fraction of the paid time, the estimate to finish (the mean run time
 * of the finished attempts, from the instance records, × the tasks left, over the slots of the
 * running instances), the money
 * committed (running instances to the expected end of their task), each per instance type; and
 * each task's share (its instance's price × its run time ÷ slots). Pure.
 */
import type { InstanceRecord } from '../job/model.js';
import { billedSeconds, instanceCharge, volumeCharge, volumeHourly } from './billing.js';

/** What is left of an instance type's tasks. */
export interface TypeWork {
  queued: number;
  /** Seconds each running task of the type has run so far. */
  running: readonly number[];
}

export interface CostInput {
  instances: readonly InstanceRecord[];
  now: number;
  /** The job's instance types (default: those of the instances). */
  types?: readonly string[];
  /** The tasks left of a type (default none). */
  work?: (instanceType: string) => TypeWork;
  /** Tasks one instance of the type runs at once (default 1). */
  slots?: (instanceType: string) => number;
  /** The on-demand price of a type, for instances that recorded none and for the estimate. */
  priceOf?: (instanceType: string) => number | undefined;
  /** Root volume size of an instance of the type, GB, where its record has none (0 or absent: not counted). */
  volumeGb?: (instanceType: string) => number;
  /** The run time to assume before any attempt of the type has finished (a dry run's estimate). */
  assumedTaskSeconds?: (instanceType: string) => number | undefined;
}

export interface TypeCost {
  instanceType: string;
  /** Instances of the type seen (all of them, gone ones too) and those still running. */
  instances: number;
  running: number;
  /** Billed instance-seconds (60-second minimum per instance). */
  paidSeconds: number;
  busySeconds: number;
  /** USD so far of the instances whose price is known (volumes included). */
  spend: number;
  /** Instances without a known price (their time is not in `spend`). */
  priceUnknown: number;
  /** busySeconds ÷ (paidSeconds × slots): the busy part of the paid slot time, 0..1; undefined before any paid time. */
  busyFraction: number | undefined;
  /** Mean run time of the type's finished attempts (or the assumed one), seconds. */
  meanTaskSeconds: number | undefined;
  /** Tasks of the type queued or running. */
  tasksLeft: number;
  /** Estimated USD and seconds (wall clock) to finish; undefined when no task has finished or the price is unknown. */
  toFinish: { usd: number; seconds: number } | undefined;
  /** USD the running instances will spend until their running task ends (the cap counts it). */
  committed: number;
}

export interface JobCost {
  spend: number;
  priceUnknown: number;
  busyFraction: number | undefined;
  /** Sum over the types; undefined when any type with tasks left has no estimate. */
  toFinish: { usd: number; seconds: number } | undefined;
  committed: number;
  perType: TypeCost[];
}

const LIVE_STATES = new Set(['BOOTING', 'INSTALLING', 'READY', 'BUSY', 'IDLE']);
const ms = (iso: string | undefined): number | undefined => (iso === undefined ? undefined : Date.parse(iso));

/** Whether the instance still runs (has no end recorded and is in a live state). */
export function isRunning(r: InstanceRecord): boolean {
  return r.endedAt === undefined && LIVE_STATES.has(r.state);
}

/** When the instance's paid time began and ended (now while it runs). */
export function paidSpan(r: InstanceRecord, now: number): { start: number; end: number } {
  const start = ms(r.launchedAt) ?? ms(r.bootedAt) ?? ms(r.heartbeatAt) ?? now;
  const end = ms(r.endedAt) ?? (isRunning(r) ? now : (ms(r.heartbeatAt) ?? now));
  return { start, end: Math.max(start, end) };
}

/** The price an instance ran at: its own record's, else the type's on-demand price, else undefined. */
export function priceOfInstance(r: InstanceRecord, priceOf?: (t: string) => number | undefined): number | undefined {
  return r.pricePerHour ?? (r.lifecycle === 'local' ? 0 : priceOf?.(r.instanceType));
}

/** USD an instance has cost by `now` (undefined: price unknown). */
export function instanceSpend(r: InstanceRecord, now: number, price: number | undefined, volumeGb = 0): number | undefined {
  if (price === undefined) return undefined;
  const { start, end } = paidSpan(r, now);
  const secs = billedSeconds(start, end);
  return instanceCharge(secs, price) + volumeCharge(volumeGb, secs);
}

/** Seconds between two ISO times (undefined when either is missing). */
export function secondsBetween(from: string | undefined, to: string | undefined): number | undefined {
  const a = ms(from);
  const b = ms(to);
  return a === undefined || b === undefined ? undefined : Math.max(0, (b - a) / 1000);
}

/** A task's cost share: its instance's price × its run time ÷ the instance's slots. */
export function taskCostShare(runSeconds: number, pricePerHour: number, slots = 1): number {
  return instanceCharge(runSeconds, pricePerHour) / Math.max(1, slots);
}

/** The typical price of a type in this job: the mean of its instances' known prices, else the table's. */
export function typePrice(type: string, instances: readonly InstanceRecord[], priceOf?: (t: string) => number | undefined): number | undefined {
  const known = instances.filter((r) => r.instanceType === type).map((r) => priceOfInstance(r, priceOf)).filter((p): p is number => p !== undefined);
  if (known.length > 0) return known.reduce((a, b) => a + b, 0) / known.length;
  return priceOf?.(type);
}

/** The root volume of the type's instances (their records' mean, else `fallback`), GB. */
export function typeVolumeGb(type: string, instances: readonly InstanceRecord[], fallback = 0): number {
  const known = instances.filter((r) => r.instanceType === type && r.volumeGb !== undefined).map((r) => r.volumeGb!);
  return known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : fallback;
}

/** Mean run time of the type's finished attempts, from the instances' own counts. */
export function meanTaskSeconds(recs: readonly InstanceRecord[]): number | undefined {
  const n = recs.reduce((a, r) => a + (r.tasksRun ?? 0), 0);
  return n > 0 ? recs.reduce((a, r) => a + (r.taskSeconds ?? 0), 0) / n : undefined;
}

function typeCost(type: string, input: CostInput): TypeCost {
  const { now } = input;
  const slots = Math.max(1, input.slots?.(type) ?? 1);
  const recs = input.instances.filter((r) => r.instanceType === type);
  const work = input.work?.(type) ?? { queued: 0, running: [] };
  let spend = 0;
  let paidSeconds = 0;
  let busySeconds = 0;
  let priceUnknown = 0;
  for (const r of recs) {
    const price = priceOfInstance(r, input.priceOf);
    const { start, end } = paidSpan(r, now);
    paidSeconds += billedSeconds(start, end);
    busySeconds += r.busySeconds ?? 0;
    const s = instanceSpend(r, now, price, r.volumeGb ?? input.volumeGb?.(type) ?? 0);
    if (s === undefined) priceUnknown++;
    else spend += s;
  }
  const mean = meanTaskSeconds(recs) ?? input.assumedTaskSeconds?.(type);
  const running = recs.filter(isRunning).length;
  // The estimates count the volume beside the instance: its price per hour added to the instance's.
  const instancePrice = typePrice(type, recs, input.priceOf);
  const price = instancePrice === undefined ? undefined : instancePrice + volumeHourly(typeVolumeGb(type, recs, input.volumeGb?.(type)));
  const tasksLeft = work.queued + work.running.length;
  let toFinish: TypeCost['toFinish'];
  let committed = 0;
  if (tasksLeft === 0) toFinish = { usd: 0, seconds: 0 };
  else if (mean !== undefined && price !== undefined) {
    const leftOfRunning = work.running.map((ran) => Math.max(0, mean - ran));
    const runningLeft = leftOfRunning.reduce((a, b) => a + b, 0);
    const total = work.queued * mean + runningLeft;
    const capacity = Math.max(1, running) * slots;
    toFinish = { usd: instanceCharge(total / slots, price), seconds: total / capacity };
    committed = instanceCharge(runningLeft / slots, price);
  }
  return {
    instanceType: type,
    instances: recs.length,
    running,
    paidSeconds,
    busySeconds,
    spend,
    priceUnknown,
    busyFraction: paidSeconds > 0 ? Math.min(1, busySeconds / (paidSeconds * slots)) : undefined,
    meanTaskSeconds: mean,
    tasksLeft,
    toFinish,
    committed,
  };
}

/** The job's cost at `now`, with one entry per instance type (of its instances or its tasks). */
export function jobCost(input: CostInput): JobCost {
  const types = [...new Set([...(input.types ?? []), ...input.instances.map((r) => r.instanceType)])].sort();
  const perType = types.map((t) => typeCost(t, input));
  const paid = perType.reduce((a, t) => a + t.paidSeconds * Math.max(1, input.slots?.(t.instanceType) ?? 1), 0);
  const busy = perType.reduce((a, t) => a + t.busySeconds, 0);
  const allKnown = perType.every((t) => t.toFinish !== undefined);
  return {
    spend: perType.reduce((a, t) => a + t.spend, 0),
    priceUnknown: perType.reduce((a, t) => a + t.priceUnknown, 0),
    busyFraction: paid > 0 ? Math.min(1, busy / paid) : undefined,
    toFinish: allKnown
      ? { usd: perType.reduce((a, t) => a + t.toFinish!.usd, 0), seconds: Math.max(0, ...perType.map((t) => t.toFinish!.seconds)) }
      : undefined,
    committed: perType.reduce((a, t) => a + t.committed, 0),
    perType,
  };
}

/**
 * What the job's Spot instances saved against on-demand: per type, what their billed seconds
 * would have cost at the type's on-demand price (`onDemandOf`, the price table) less what they
 * cost at the price they ran at. undefined when the job has no Spot instance with both prices known.
 */
export function spotSaving(
  instances: readonly InstanceRecord[],
  now: number,
  onDemandOf: (type: string) => number | undefined,
): { usd: number; perType: Record<string, number> } | undefined {
  const perType: Record<string, number> = {};
  for (const r of instances) {
    const od = onDemandOf(r.instanceType);
    if (r.lifecycle !== 'spot' || r.pricePerHour === undefined || od === undefined) continue;
    const { start, end } = paidSpan(r, now);
    const secs = billedSeconds(start, end);
    perType[r.instanceType] = (perType[r.instanceType] ?? 0) + instanceCharge(secs, od) - instanceCharge(secs, r.pricePerHour);
  }
  const types = Object.keys(perType);
  return types.length ? { usd: types.reduce((a, t) => a + perType[t]!, 0), perType } : undefined;
}
