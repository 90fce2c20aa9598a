/**
 * A worker's slots: each runs one task at a time, apart from the others (its own folder, run file,
 * heartbeat and lease: attempt.ts). A slot's life is: claim the delivered task (claimTask), run it
 * (runTask), end; the pool (SlotPool) holds the running ones, so that the loop asks for as many
 * messages as there are free slots, stops them all on an interruption and waits for one to end.
 */
import { MAX_VISIBILITY_SECONDS, type JobRecord, type TaskRecord } from '@gq/common';
import type { AgentDeps } from './deps.js';
import { runTask, type TaskRun } from './attempt.js';

/**
 * How long to hide a message whose task another worker holds. SQS shows a message again at most
 * 12 hours after it was received, so a task that runs for days sees its message come back; each
 * return costs a receive (and counts toward the dead-letter limit). Once a task has run for an
 * hour, hide it for twice as long as it has run (at most 12 hours): the returns grow only
 * logarithmically with the run time, and a lost holder's task still comes back within about the
 * time it had run. Before that, hide it until just after the holder's lease would run out.
 */
export function hideLeased(leaseUntil: number, runningSince: number | undefined, visibility: number, now: number): number {
  const leaseLeft = Math.ceil((leaseUntil - now) / 1000) + visibility;
  const ran = runningSince ? (now - runningSince) / 1000 : 0;
  const wanted = ran > 3600 ? Math.max(leaseLeft, 2 * ran) : leaseLeft;
  return Math.max(1, Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(wanted)));
}

/**
 * Claim a delivered task for this worker. The claimed job and task when it is ours to run;
 * undefined when it is not (done or gone: the message is deleted; held by a live worker: the
 * message is hidden again, never run twice).
 */
export async function claimTask(d: AgentDeps, job: JobRecord, taskNo: number, receipt: string, now: () => number): Promise<{ job: JobRecord; task: TaskRecord } | undefined> {
  // Where the attempt runs, for the task's history (the report's timeline): the billing facts
  // say Spot or on-demand on EC2 (usage.ts), 'local' for a local worker.
  const where = { instanceType: d.instanceType, lifecycle: d.billing?.lifecycle ?? 'local' } as const;
  const claim = await d.backend.status.claim(job.name, taskNo, d.instance, job.visibilitySeconds * 1000, where);
  switch (claim.kind) {
    case 'missing':
    case 'done':
    case 'exhausted':
      await d.queue.delete(receipt);
      return undefined;
    case 'leased': {
      const secs = hideLeased(claim.leaseUntil, claim.runningSince, job.visibilitySeconds, now());
      d.log.info({ task: taskNo, hideSeconds: secs }, 'task delivered again while its lease is held by another worker: hidden again, not run');
      await d.queue.extend(receipt, secs);
      return undefined;
    }
    case 'claimed':
      return { job: claim.job, task: claim.task };
  }
}

/** How a slot's task ended: `error` when recording it failed (AWS out of reach longer than the retries). */
export interface SlotEnd {
  slot: number;
  task: number;
  /** When it ended (the clock's time). */
  at: number;
  error?: unknown;
}

interface Running {
  task: number;
  run: TaskRun;
  ended: Promise<SlotEnd>;
}

export class SlotPool {
  private readonly running = new Map<number, Running>();
  private readonly ended: SlotEnd[] = [];

  /** `onEnd` is told of each end as it happens (the worker's record lists the tasks it runs). */
  constructor(
    readonly size: number,
    private readonly now: () => number,
    private readonly onEnd: (end: SlotEnd) => Promise<void>,
  ) {}

  get busy(): number {
    return this.running.size;
  }

  get free(): number {
    return this.size - this.running.size;
  }

  /** The tasks the slots run now, in slot order. */
  tasks(): number[] {
    return [...this.running.entries()].sort(([a], [b]) => a - b).map(([, r]) => r.task);
  }

  /** Run a claimed task in the lowest free slot (its run file and folder are the slot's: attempt.ts). */
  start(d: AgentDeps, job: JobRecord, task: TaskRecord, receipt: string): TaskRun {
    let slot = 0;
    while (this.running.has(slot)) slot++;
    if (slot >= this.size) throw new Error(`internal: no free slot for task ${task.task}`);
    const run = runTask(d, job, task, receipt, slot);
    const ended = run.done.then(
      (): SlotEnd => ({ slot, task: task.task, at: this.now() }),
      (error: unknown): SlotEnd => ({ slot, task: task.task, at: this.now(), error }),
    ).then(async (end) => {
      this.running.delete(slot);
      this.ended.push(end);
      await this.onEnd(end);
      return end;
    });
    this.running.set(slot, { task: task.task, run, ended });
    return run;
  }

  /** Stop every running task (`release` gives them back unrun). */
  stopAll(reason: 'release' | 'shutdown'): void {
    for (const r of this.running.values()) r.run.stop(reason);
  }

  /** The ends not yet taken, oldest first. */
  takeEnded(): SlotEnd[] {
    return this.ended.splice(0);
  }

  /** Wait until a slot ends (or `signal` aborts). */
  async oneEnded(signal: AbortSignal): Promise<void> {
    if (this.running.size === 0 || signal.aborted) return;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((r) => signal.addEventListener('abort', (onAbort = () => r()), { once: true }));
    try {
      await Promise.race([aborted, ...[...this.running.values()].map((r) => r.ended)]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /** Wait until every slot has ended. */
  async allEnded(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.ended));
  }
}
