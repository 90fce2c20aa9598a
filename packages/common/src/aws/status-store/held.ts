/**
 * The records a store wrote: claim, heartbeat and complete of one task follow each other in the
 * same worker, so each store keeps the last task record it wrote while it holds the task's lease
 * (and the job record its claim read), and decides the next heartbeat or complete from them
 * without reading. Nothing is lost by it: a decision from a kept record is only acted on through
 * its write, conditional on the kept version (and lease), so it stands only if the item was still
 * exactly that record (a version never comes back, and decided writes are the only writers of
 * everything but `tags`); a failed condition, a decision with nothing to write, or any error drops
 * the kept record and reads again. The kept job record can only be stale in `cancelRequested` (its
 * spec never changes; the counters are not used): cancel sets the job's flag first and then marks
 * every running task (`cancelRequested`, a new version), so a kept task record of a cancelled job
 * fails its condition at the latest once cancel has passed, and the fresh read sees the cancel.
 */
import type { JobRecord, TaskRecord } from '../../job/model.js';

/** A task record this store wrote while holding the task, with the job its claim read. */
export interface Held {
  task: TaskRecord;
  job: JobRecord | undefined;
}

const key = (job: string, task: number): string => `${job}\u0000${task}`;
/** Records kept at most (a worker holds one task at a time; this only bounds misuse). */
const MAX_HELD = 1024;

export class HeldRecords {
  private readonly held = new Map<string, Held>();

  get(job: string, task: number): Held | undefined {
    return this.held.get(key(job, task));
  }

  /** Keep `rec` as written (only a held lease, RUNNING, has a next decision by this store). */
  keep(rec: TaskRecord, job: JobRecord | undefined): void {
    const k = key(rec.job, rec.task);
    this.held.delete(k);
    if (rec.state !== 'RUNNING') return;
    this.held.set(k, { task: rec, job });
    if (this.held.size > MAX_HELD) this.held.delete(this.held.keys().next().value!);
  }

  drop(job: string, task: number): void {
    this.held.delete(key(job, task));
  }

  /** Forget every task of `job` (deleted). */
  dropJob(job: string): void {
    for (const [k, h] of this.held) if (h.task.job === job) this.held.delete(k);
  }
}
