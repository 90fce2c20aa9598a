/**
 * The instance's own accounting for the cost figures: when it was launched, when the agent was up
 * (boot done) and ready (install done), when it ended, the seconds it spent busy (running a task)
 * and idle (ready without one), how it is bought and the price it runs at. The loop calls
 * `record(state)` wherever it writes its instance record (and on the record's heartbeat); the
 * time since the previous call goes to the state the instance was in. Pure, on the loop's clock.
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
}

export type UsageFields = Pick<
  InstanceRecord,
  'launchedAt' | 'bootedAt' | 'installedAt' | 'endedAt' | 'busySeconds' | 'idleSeconds' | 'tasksRun' | 'taskSeconds' | 'lifecycle' | 'pricePerHour' | 'priceSource'
>;

const IDLE: ReadonlySet<InstanceState> = new Set(['READY', 'IDLE']);
const ENDED: ReadonlySet<InstanceState> = new Set(['STOPPED', 'INSTALL_FAILED']);
const iso = (ms: number) => new Date(ms).toISOString();

export class Usage {
  private readonly bootedAt: number;
  private state: InstanceState | undefined;
  private since: number;
  private busyMs = 0;
  private idleMs = 0;
  private installedAt: number | undefined;
  private endedAt: number | undefined;
  private tasksRun = 0;
  private taskMs = 0;

  constructor(
    private readonly now: () => number,
    private readonly facts: BillingFacts = { lifecycle: 'local', pricePerHour: 0 },
  ) {
    this.bootedAt = now();
    this.since = this.bootedAt;
  }

  /** The instance is now in `state` (the same one again on a heartbeat): its fields for the record. */
  record(state: InstanceState): UsageFields {
    const t = this.now();
    if (this.state === 'BUSY') this.busyMs += t - this.since;
    else if (this.state !== undefined && IDLE.has(this.state)) this.idleMs += t - this.since;
    this.since = t;
    this.state = state;
    if (state === 'READY') this.installedAt ??= t;
    if (ENDED.has(state)) this.endedAt ??= t;
    return this.fields();
  }

  /** An attempt ran `ms` (whatever its outcome). */
  taskDone(ms: number): void {
    this.tasksRun++;
    this.taskMs += Math.max(0, ms);
  }

  fields(): UsageFields {
    const f = this.facts;
    return {
      launchedAt: iso(Math.min(f.launchedAt ?? this.bootedAt, this.bootedAt)),
      bootedAt: iso(this.bootedAt),
      ...(this.installedAt !== undefined ? { installedAt: iso(this.installedAt) } : {}),
      ...(this.endedAt !== undefined ? { endedAt: iso(this.endedAt) } : {}),
      busySeconds: Math.round(this.busyMs / 1000),
      idleSeconds: Math.round(this.idleMs / 1000),
      tasksRun: this.tasksRun,
      taskSeconds: Math.round(this.taskMs / 1000),
      lifecycle: f.lifecycle,
      ...(f.pricePerHour !== undefined ? { pricePerHour: f.pricePerHour } : {}),
      ...(f.priceSource !== undefined ? { priceSource: f.priceSource } : {}),
    };
  }
}
