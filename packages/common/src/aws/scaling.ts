/**
 * Fleet arithmetic (pure): how many workers a group should have.
 *
 * - Never more than the group's maximum (moto, unlike AWS, accepts a desired capacity above
 *   MaxSize, so gq clamps itself).
 * - Never fewer than the workers that are busy (protected from scale-in): lowering the desired
 *   capacity below them would only make the group try to terminate unprotected idle workers that
 *   are not there, and hides how many workers the group really has.
 * - Never negative; fractional inputs are rounded up (a task needs a whole worker).
 */

function nonNegativeInt(n: number): number {
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.ceil(n);
}

/** `requested` clamped to [0, max], then raised to `busy` (but never above max). */
export function clampDesired(requested: number, max: number, busy = 0): number {
  const m = nonNegativeInt(max);
  const wanted = Math.min(nonNegativeInt(requested), m);
  return Math.min(m, Math.max(wanted, nonNegativeInt(busy)));
}

export interface BacklogInput {
  /**
   * Tasks that still need a worker slot: queued plus running (a running task holds its slot).
   * Counting only the queued ones would shrink the fleet under workers that are still busy.
   */
  pending: number;
  /** Tasks that one worker runs at once. */
  slotsPerInstance: number;
  /** The group's maximum size. */
  max: number;
  /** Workers that are busy now (protected from scale-in). */
  busy?: number;
}

/** Workers needed for a backlog: min(max, ceil(pending / slots)), never below the busy ones. */
export function desiredForBacklog({ pending, slotsPerInstance, max, busy = 0 }: BacklogInput): number {
  const slots = Math.max(1, Math.floor(Number.isFinite(slotsPerInstance) ? slotsPerInstance : 1));
  const need = Math.ceil(nonNegativeInt(pending) / slots);
  return clampDesired(need, max, busy);
}

/**
 * The desired capacity an agent raises a group to for a backlog of `pending` tasks (its queue's
 * visible, delayed and in-flight messages): ceil(pending ÷ slots), never below the group's
 * `current` desired (it only ever raises: two agents raising at once both land on the larger,
 * and a gq command that set more is not undone), never above its `max`.
 */
export function raisedDesired({ current, pending, slotsPerInstance, max }: { current: number; pending: number; slotsPerInstance: number; max: number }): number {
  const need = desiredForBacklog({ pending, slotsPerInstance, max });
  return Math.min(nonNegativeInt(max), Math.max(nonNegativeInt(current), need));
}
