/**
 * A cost range for a job before it runs (`gq submit --dry-run`, and `--max-cost` at submit): from
 * the tasks of a type, a run time per task (given, or learnt from a previous job), the instances
 * and slots the plan uses and the price. Low: only the task time is paid (at least a minute per
 * instance). High: every instance runs whole waves of tasks, plus its boot and install, plus the
 * idle period before it leaves. Pure.
 */
import { instanceCharge, MIN_BILLED_SECONDS } from './billing.js';

/** Boot and install allowance per instance for the high end, seconds (a cold AMI, an install script). */
export const BOOT_ALLOWANCE_SECONDS = 300;

export interface EstimateInput {
  tasks: number;
  taskSeconds: number;
  instances: number;
  slots: number;
  /** undefined: price unknown, no range. */
  pricePerHour: number | undefined;
  idleSeconds: number;
  bootSeconds?: number;
}

export interface CostRange {
  low: number;
  high: number;
  /** Wall-clock seconds to finish once the instances run. */
  seconds: number;
}

export function estimateRange(e: EstimateInput): CostRange | undefined {
  if (e.pricePerHour === undefined || e.tasks <= 0) return e.tasks <= 0 ? { low: 0, high: 0, seconds: 0 } : undefined;
  const instances = Math.max(1, e.instances);
  const slots = Math.max(1, e.slots);
  const waves = Math.ceil(e.tasks / (instances * slots));
  const lowSeconds = Math.max((e.tasks * e.taskSeconds) / slots, instances * MIN_BILLED_SECONDS);
  const highSeconds = instances * (waves * e.taskSeconds + (e.bootSeconds ?? BOOT_ALLOWANCE_SECONDS) + e.idleSeconds);
  return { low: instanceCharge(lowSeconds, e.pricePerHour), high: instanceCharge(highSeconds, e.pricePerHour), seconds: waves * e.taskSeconds };
}

/** Ranges of several types added up (undefined when any is unknown). */
export function addRanges(ranges: readonly (CostRange | undefined)[]): CostRange | undefined {
  if (ranges.some((r) => r === undefined)) return undefined;
  const rs = ranges as CostRange[];
  return { low: rs.reduce((a, r) => a + r.low, 0), high: rs.reduce((a, r) => a + r.high, 0), seconds: Math.max(0, ...rs.map((r) => r.seconds)) };
}
