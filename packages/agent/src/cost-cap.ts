/**
 * The agent's side of the cost cap (common/src/cost/cap.ts), cheap at any fleet size. Between
 * tasks a worker reads the job item (one read, at most every CHECK_MS; NO_CAP_CHECK_MS for a job
 * without a cap): its cap (set or raised later by `gq resume --max-cost`, even on a job
 * submitted without one) and its `capStop` flag,
 * which whoever saw the cap reached first set (one conditional write). Only now and then does a
 * worker count the spend itself from the instance records (a Query of all of them): at random
 * moments, each worker about once per CHECK_MS × the job's busy instances, so that the whole
 * fleet counts about once per CHECK_MS whatever its size (500 instances: one Query every 3 s,
 * not 500). A worker that finds the cap reached sets the flag; every other one sees it at its
 * next read of the job item.
 */
import { capState, slotsOf, type CapStop, type JobRecord, type Logger, type StatusStore } from '@gq/common';

/**
 * At most one read of the job item per this long per worker, and the fleet's counting period:
 * short enough that tasks of a few seconds do not run past the cap for long (a 10 s period let a
 * whole 8-task job of 3 s tasks through on a loaded host).
 */
export const CHECK_MS = 3_000;
/**
 * A job without a cap is read this often instead: a cap set later (`gq resume --max-cost`) is
 * seen within it, and a job of short tasks without a cap costs no extra read a task.
 */
export const NO_CAP_CHECK_MS = 30_000;
/** No worker counts less often than this (its share of the fleet's counting, when the fleet is huge). */
export const MAX_COUNT_MS = 60 * 60_000;

/** The reads and the write the cap needs (a narrow slice of StatusStore). */
export type CapStore = Pick<StatusStore, 'getJob' | 'listInstances' | 'markCapReached'>;

/** The mean time between this worker's counts: CHECK_MS × the job's busy instances, within [CHECK_MS, MAX_COUNT_MS]. */
export function countPeriodMs(job: Pick<JobRecord, 'counts' | 'instanceTypes' | 'slots'>): number {
  const slots = Math.max(1, ...Object.keys(job.instanceTypes).map((t) => slotsOf(job, t)));
  return Math.min(MAX_COUNT_MS, CHECK_MS * Math.max(1, Math.ceil(job.counts.running / slots)));
}

export class CostCap {
  /** When the next read of the job item is due. */
  private checkAt = -Infinity;
  private last = false;
  /** When this worker counts the spend next (undefined: not planned yet). */
  private countAt: number | undefined;

  constructor(
    private readonly status: CapStore,
    private readonly job: string,
    private readonly instance: string,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Whether the job's cost cap is reached. Once it is, it stays so for this worker (it takes no
   * new task and leaves). false while the records cannot be read.
   */
  async reached(): Promise<boolean> {
    const t = this.now();
    if (this.last || t < this.checkAt) return this.last;
    this.checkAt = t + CHECK_MS;
    try {
      const job = await this.status.getJob(this.job);
      if (job?.maxCost === undefined) {
        this.checkAt = t + NO_CAP_CHECK_MS;
        return false;
      }
      if (job.capStop) return this.stop(job.capStop);
      const period = countPeriodMs(job);
      // The first count at a random moment of the first period; then a random gap of mean
      // `period`. Planned anew when the fleet shrank (its share of the counting grew).
      if (this.countAt === undefined || this.countAt - t > 1.5 * period) this.countAt = t + this.random() * period;
      if (t < this.countAt) return false;
      this.countAt = t + period * (0.5 + this.random());
      const cap = capState(job, await this.status.listInstances(this.job), t, { slots: (type) => slotsOf(job, type) });
      if (!cap?.reached) return false;
      const stop: CapStop = { at: new Date(t).toISOString(), maxCost: cap.maxCost, spend: cap.spend, committed: cap.committed, next: cap.next, by: this.instance };
      // false: another one recorded it first, or the cap was raised meanwhile (read again next time).
      if (!(await this.status.markCapReached(this.job, stop))) return false;
      return this.stop(stop);
    } catch {
      // Out of reach: the loop's own back-off deals with it; the cap is checked again next time.
      return false;
    }
  }

  /** The job item, read by something else (a claim), says the cap was reached: stop now. */
  sawStop(s: CapStop): void {
    if (!this.last) this.stop(s);
  }

  private stop(s: CapStop): true {
    this.log.warn({ maxCost: s.maxCost, spend: s.spend, committed: s.committed, by: s.by }, 'the job reached its cost cap; this worker takes no new task and leaves');
    return (this.last = true);
  }
}
