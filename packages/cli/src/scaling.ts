/** Scaling arithmetic (pure). */

/**
 * Local workers per instance type: `workers` shared in proportion to each type's pending tasks
 * (largest remainder), at least one per type with work, never more than its tasks need: a worker
 * with `slots[type]` slots runs that many at once, so a type needs ceil(tasks ÷ slots) workers.
 */
export function splitWorkers(pending: Record<string, number>, workers: number, slots: Record<string, number> = {}): Record<string, number> {
  const types = Object.keys(pending).filter((t) => (pending[t] ?? 0) > 0).sort();
  const out: Record<string, number> = {};
  if (!types.length) return out;
  const need = (t: string) => Math.ceil(pending[t]! / Math.max(1, slots[t] ?? 1));
  // One each first, then the rest by largest remainder of the proportional share.
  for (const t of types) out[t] = 1;
  let left = Math.max(0, workers - types.length);
  const room = (t: string) => need(t) - out[t]!;
  while (left > 0) {
    const open = types.filter((t) => room(t) > 0);
    if (!open.length) break;
    const total = open.reduce((s, t) => s + room(t), 0);
    const shares = open.map((t) => ({ t, exact: (left * room(t)) / total }));
    let given = 0;
    for (const { t, exact } of shares) {
      const n = Math.min(room(t), Math.floor(exact));
      out[t]! += n;
      given += n;
    }
    if (given === 0) {
      shares.sort((a, b) => b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)) || a.t.localeCompare(b.t));
      out[shares[0]!.t]!++;
      given = 1;
    }
    left -= given;
  }
  return out;
}

/**
 * Local worker processes when `--workers` is not given: about one running task per CPU, so
 * ceil(CPUs ÷ slots) processes (the most slots of the job's types), at least one.
 */
export function defaultLocalWorkers(cpus: number, slots: Record<string, number> = {}): number {
  const most = Math.max(1, ...Object.values(slots));
  return Math.max(1, Math.ceil(cpus / most));
}
