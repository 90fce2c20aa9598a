/**
 * The instance's own accounting for the cost figures: when it was launched, when the agent was up
 * (boot done) and ready (install done), when it ended, the seconds it spent busy (running
 * attempts: with several at once, their seconds add up) and idle (ready, minus busy), the
 * attempts it finished and their seconds, how it is bought and the price it runs at. The loop
 * calls `record(state)` wherever it writes its instance record and `startTask()` around each
 * attempt. Pure, on the loop's clock.
 */
import type { InstanceRecord, InstanceState, Lifecycle } from '@gq/common';

/** How this instance is billed, found at start (run.ts): local workers cost nothing. */
export interface BillingFacts {
  /** Epoch ms the instance was launched (default: when the agent started). */
  launchedAt?: number;
  lifecycle: Lifecycle;
  /** USD per hour; absent when gq does not know it. */
  pricePerHour?: number;
  priceSource?: string;
  /** GB of the root EBS volume (the UserData's --root-volume-gb); absent locally. */
  volumeGb?: number;
}

export type UsageFields = Pick<
  InstanceRecord,
  'launchedAt' | 'bootedAt' | 'installedAt' | 'endedAt' | 'busySeconds' | 'idleSeconds' | 'tasksRun' | 'taskSeconds' | 'lifecycle' | 'pricePerHour' | 'priceSource' | 'volumeGb'
>;

const ENDED: ReadonlySet<InstanceState> = new Set(['STOPPED', 'INSTALL_FAILED']);
const iso = (ms: number) => new Date(ms).toISOString();

export class Usage {
  private readonly bootedAt: number;
  private installedAt: number | undefined;
  private endedAt: number | undefined;
  private tasksRun = 0;
  /** Seconds of the finished attempts, ms. */
  private taskMs = 0;
  /** Start times of the attempts running now. */
  private readonly open = new Set<{ at: number }>();

  constructor(
    private readonly now: () => number,
    private readonly facts: BillingFacts = { lifecycle: 'local', pricePerHour: 0 },
  ) {
    this.bootedAt = now();
  }

  /** The instance is now in `state` (the same one again on a heartbeat): its fields for the record. */
  record(state: InstanceState): UsageFields {
    const t = this.now();
    if (state === 'READY') this.installedAt ??= t;
    if (ENDED.has(state)) this.endedAt ??= t;
    return this.fields();
  }

  /**
   * An attempt starts; call the returned function when it ends (whatever its outcome): it counts
   * the attempt, then runs `onEnd` (the loop writes its record then, so that the figures and the
   * cost cap see the attempt at once, not at the next heartbeat).
   */
  startTask(onEnd: () => Promise<void> = async () => undefined): () => Promise<void> {
    const run = { at: this.now() };
    this.open.add(run);
    return async () => {
      if (!this.open.delete(run)) return;
      this.tasksRun++;
      this.taskMs += Math.max(0, this.now() - run.at);
      await onEnd();
    };
  }

  fields(): UsageFields {
    const f = this.facts;
    const t = this.endedAt ?? this.now();
    let busyMs = this.taskMs;
    for (const r of this.open) busyMs += Math.max(0, t - r.at);
    const readyMs = this.installedAt === undefined ? 0 : Math.max(0, t - this.installedAt);
    return {
      launchedAt: iso(Math.min(f.launchedAt ?? this.bootedAt, this.bootedAt)),
      bootedAt: iso(this.bootedAt),
      ...(this.installedAt !== undefined ? { installedAt: iso(this.installedAt) } : {}),
      ...(this.endedAt !== undefined ? { endedAt: iso(this.endedAt) } : {}),
      busySeconds: Math.round(busyMs / 1000),
      idleSeconds: Math.round(Math.max(0, readyMs - busyMs) / 1000),
      tasksRun: this.tasksRun,
      taskSeconds: Math.round(this.taskMs / 1000),
      lifecycle: f.lifecycle,
      ...(f.pricePerHour !== undefined ? { pricePerHour: f.pricePerHour } : {}),
      ...(f.priceSource !== undefined ? { priceSource: f.priceSource } : {}),
      ...(f.volumeGb ? { volumeGb: f.volumeGb } : {}),
    };
  }
}
