/**
 * The agent's side of the cost cap (common/src/cost/cap.ts): between tasks, a worker of a job
 * with a cap reads the job (its cap may have been raised by `gq resume --max-cost`) and the
 * instance records, at most every CHECK_MS, and takes no new task once the cap is reached.
 */
import { capState, slotsOf, type Logger, type StatusStore } from '@gq/common';

/**
 * At most one check (a getJob and one Query of the instance records) per this long per worker:
 * short enough that tasks of a few seconds do not run past the cap for long (a 10 s period let a
 * whole 8-task job of 3 s tasks through on a loaded host), long enough that the reads stay a
 * fraction of what the tasks' own transitions cost.
 */
const CHECK_MS = 3_000;

export class CostCap {
  private checkedAt = -Infinity;
  private last = false;

  constructor(
    private readonly status: StatusStore,
    private readonly job: string,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  /**
   * Whether the job's cap is reached: false at once for a job submitted without one (`maxCost`
   * from the job the agent read), and while the records cannot be read.
   */
  async reached(maxCost: number | undefined): Promise<boolean> {
    if (maxCost === undefined) return false;
    const t = this.now();
    if (t - this.checkedAt < CHECK_MS) return this.last;
    this.checkedAt = t;
    try {
      const job = await this.status.getJob(this.job);
      if (job?.maxCost === undefined) return (this.last = false);
      const slots = (type: string) => slotsOf(job, type);
      this.last = capState(job, await this.status.listInstances(this.job), t, { slots })?.reached ?? false;
      if (this.last) this.log.warn({ maxCost: job.maxCost }, 'the job reached its cost cap; this worker takes no new task and leaves');
    } catch {
      // Out of reach: the loop's own back-off deals with it; the cap is checked again next time.
    }
    return this.last;
  }
}
