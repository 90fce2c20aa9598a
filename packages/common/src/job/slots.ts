/**
 * Slots: how many tasks one worker (an instance, or a local worker process) runs at once. The
 * `slots` setting is one number for every instance type, or one per type, family ("c5") or "*";
 * the job records the resolved number per type, and everything else reads it from the job.
 */

/** Slots a worker may have at most (one receive asks SQS for at most 10 messages; a few receives fill more). */
export const MAX_SLOTS = 64;

/** The `slots` setting: one number, or per instance type, family or "*". */
export type SlotsSetting = number | Record<string, number>;

/** The slots of `instanceType` under the setting: its own entry, else its family's, else "*", else 1. */
export function slotsFor(setting: SlotsSetting | undefined, instanceType: string): number {
  if (setting === undefined) return 1;
  if (typeof setting === 'number') return setting;
  return setting[instanceType] ?? setting[instanceType.split('.')[0]!] ?? setting['*'] ?? 1;
}

/** What the job records: the slots of each of its instance types (absent when all are 1, as in jobs before slots). */
export function jobSlots(setting: SlotsSetting | undefined, types: Iterable<string>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const t of types) out[t] = slotsFor(setting, t);
  return Object.values(out).some((n) => n !== 1) ? out : undefined;
}

/** The slots of one instance type of a job (1 for a job recorded before slots). */
export function slotsOf(job: { slots?: Record<string, number> }, instanceType: string): number {
  const n = job.slots?.[instanceType];
  return n !== undefined && Number.isSafeInteger(n) && n >= 1 ? Math.min(n, MAX_SLOTS) : 1;
}
