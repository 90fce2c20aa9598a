/**
 * The worker's life: prepare (code, licence, install) → loop (receive → claim → run) → leave
 * (after the queue stayed empty for the idle period, on SIGTERM, or on a Spot interruption).
 * A worker has the job's slots for its instance type: it runs up to that many tasks at once
 * (slot.ts), asks the queue for as many messages as it has free slots, and is idle only when
 * every slot is. Written once against the four ports; the local backend and EC2 run exactly this.
 */
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyDetail, INTERRUPTED_DETAIL, keys, QueueNotFoundError, registerSecret, slotsOf, type InstanceState, type JobRecord } from '@gq/common';
import type { AgentDeps } from './deps.js';
import { realClock, type Clock } from './clock.js';
import { runInstall } from './install.js';
import { backoffMs, isTransient, persist } from './retry.js';
import { unpackCode } from './workspace.js';
import { ScaleInProtection } from './protection.js';
import { EarlyLook, idleDecision, receiveWaitSeconds } from './idle-leave.js';
import { claimTask, hideLeased, SlotPool } from './slot.js';

export { hideLeased };
import { Usage } from './usage.js';
import { CostCap } from './cost-cap.js';

export interface AgentControl {
  /** First SIGTERM: take no more work, let the running tasks finish. */
  drain(): void;
  /** Second SIGTERM or Spot notice: stop the running tasks (every slot) and give them back. */
  interrupt(reason: 'release' | 'shutdown'): void;
}

export interface AgentResult {
  exitCode: number;
  tasksRun: number;
  reason: 'idle' | 'drained' | 'interrupted' | 'install-failed' | 'job-missing' | 'unreachable' | 'cost-cap';
}

const MAX_BACKOFF_MS = 30_000;
/** A worker that cannot reach AWS for this long leaves (see loop); the job's `unreachableTimeout`. */
const DEFAULT_UNREACHABLE_S = 30 * 60;

/** SQS returns at most 10 messages a receive (MaxNumberOfMessages, 1 to 10:
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html). */
const MAX_RECEIVE = 10;
const INSTANCE_HEARTBEAT_MS = 60_000;

export class Agent implements AgentControl {
  /** After the `failures`-th failure in a row: log it and pause (growing, capped, woken by a signal). */
  private async backOff(failures: number, err: unknown, what: string, extra: Record<string, unknown> = {}): Promise<void> {
    const wait = backoffMs(failures, MAX_BACKOFF_MS);
    this.d.log.warn({ err, ...extra, failures, waitMs: Math.round(wait) }, what);
    await this.clock.sleep(wait, this.wake.signal);
  }

  private draining = false;
  private interrupted: 'release' | 'shutdown' | undefined;
  /** The slots, once the worker is prepared. */
  private pool: SlotPool | undefined;
  /** Running tasks a Spot interruption stopped, and those sent to the on-demand queue (on-demand.ts; all: no Spot replacement). */
  private stoppedOnSpot = 0;
  private movedToOnDemand = 0;
  private readonly wake = new AbortController();
  private instanceState: InstanceState = 'BOOTING';
  /** Scale-in protection as AWS accepted it (protection.ts). */
  private protection: ScaleInProtection | undefined;
  /** Why the loop ended, when not idle, drained or interrupted. */
  private leftFor: 'job-missing' | 'unreachable' | 'cost-cap' | undefined;
  private readonly clock: Clock;
  private readonly usage: Usage;
  /** Per running task: closes its attempt in `usage` (cost figures). */
  private readonly usageEnds = new Map<number, () => Promise<void>>();
  private readonly cap: CostCap;

  constructor(private readonly d: AgentDeps) {
    this.clock = d.clock ?? realClock;
    this.usage = new Usage(() => this.clock.now(), d.billing);
    this.cap = new CostCap(d.backend.status, d.job, d.instance, () => this.clock.now(), d.log);
  }

  drain(): void {
    this.draining = true;
    this.wake.abort();
  }

  interrupt(reason: 'release' | 'shutdown'): void {
    this.draining = true;
    this.interrupted = reason;
    if (reason === 'release') this.stoppedOnSpot += this.pool?.busy ?? 0;
    this.pool?.stopAll(reason);
    this.wake.abort();
  }

  private stateExtra: { detail?: string; installLogKey?: string } = {};
  private serial: Promise<unknown> = Promise.resolve();

  /**
   * The worker's record writes and its claims, one at a time: a claim adds its task to the
   * record's `tasks`, and a record write must not land after it with a list that lacks it.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.serial.then(fn, fn);
    this.serial = p.catch(() => undefined);
    return p;
  }

  private async setState(state: InstanceState, extra: { detail?: string; installLogKey?: string } = {}): Promise<void> {
    this.instanceState = state;
    this.stateExtra = { ...this.stateExtra, ...extra };
    if (state !== 'BUSY' && extra.detail === undefined) this.stateExtra.detail = undefined;
    // Built when it is written (after the claims before it): the state and tasks of that moment.
    const record = () => ({
      job: this.d.job,
      instance: this.d.instance,
      instanceType: this.d.instanceType,
      ...(this.d.pool ? { pool: this.d.pool } : {}),
      state: this.instanceState,
      heartbeatAt: new Date(this.clock.now()).toISOString(),
      pid: process.pid,
      ...this.stateExtra,
      ...this.busyFields(),
      ...this.usage.record(this.instanceState),
    });
    await this.exclusive(() => this.d.backend.status.putInstance(record())).catch((e: unknown) => this.d.log.warn({ err: e }, 'could not record instance state'));
  }

  /** While BUSY, the record names the tasks the slots run (`task` the first: `gq status` reads them). */
  private busyFields(): { task?: number; tasks?: number[]; detail?: string } {
    const tasks = this.instanceState === 'BUSY' ? (this.pool?.tasks() ?? []) : [];
    return tasks.length > 0 ? { task: tasks[0], tasks, detail: busyDetail(tasks) } : {};
  }

  async run(): Promise<AgentResult> {
    const { d } = this;
    const job = await d.backend.status.getJob(d.job);
    if (!job) {
      d.log.error('job not found in the status store');
      return { exitCode: 2, tasksRun: 0, reason: 'job-missing' };
    }
    await this.setState('INSTALLING');
    // The instance record's heartbeat: `gq status` shows when each worker was last seen.
    const stopBeat = this.clock.every(INSTANCE_HEARTBEAT_MS, () => void this.setState(this.instanceState));
    try {
      return await this.runPrepared(job);
    } finally {
      stopBeat();
    }
  }

  private async runPrepared(job: JobRecord): Promise<AgentResult> {
    const prepared = await this.prepare(job);
    if (!prepared) {
      await this.leave();
      return { exitCode: 3, tasksRun: 0, reason: 'install-failed' };
    }
    await this.setState('READY');
    const pool = new SlotPool(slotsOf(job, this.d.instanceType), () => this.clock.now(), async (end) => {
      // The attempt counts for the cost figures before the record that shows them is written.
      const counted = this.usageEnds.get(end.task);
      this.usageEnds.delete(end.task);
      await counted?.();
      // A slot that ends updates the record: the tasks still running, or IDLE when none is.
      await this.setState(this.pool && this.pool.busy > 0 ? 'BUSY' : 'IDLE');
    });
    this.pool = pool;
    let tasksRun;
    try {
      tasksRun = await this.loop(job, pool);
    } catch (e) {
      // A bug, or AWS refusing the worker for good: the tasks of the other slots go back too.
      pool.stopAll('shutdown');
      await pool.allEnded();
      throw e;
    }
    const reason = this.interrupted ? 'interrupted' : this.draining ? 'drained' : (this.leftFor ?? 'idle');
    await this.leave();
    return { exitCode: 0, tasksRun, reason };
  }

  /** Code, licence, install. false when the install failed (recorded with its log). */
  private async prepare(job: JobRecord): Promise<boolean> {
    const { d } = this;
    await unpackCode(d.ws, d.backend.artifacts, job.codeKey);
    if (job.licenseKey) {
      const text = await d.backend.secrets.getLicence(job.name);
      if (text === undefined) {
        // Deleted when the job finished (a worker started for a retry) or expired.
        d.log.error('the job has a licence but it is no longer stored; this worker takes no task');
        await this.setState('INSTALL_FAILED', { detail: 'licence deleted or expired: run gq retry --failed --license FILE' });
        return false;
      }
      registerSecret(text);
      mkdirSync(d.ws.secret, { recursive: true, mode: 0o700 });
      const file = join(d.ws.secret, 'gurobi.lic');
      writeFileSync(file, text, { mode: 0o600 });
      chmodSync(file, 0o600);
      // Tasks run as the task user (EC2): the licence is theirs to read, nobody else's.
      if (d.taskUser) for (const p of [d.ws.secret, file]) chownSync(p, d.taskUser.uid, d.taskUser.gid);
      d.licenseFile = file;
    }
    if (!job.installKey) return true;
    const script = (await d.backend.artifacts.getBytes(job.installKey)).toString('utf8');
    const logFile = join(d.ws.logs, 'install.log');
    const env: NodeJS.ProcessEnv = { ...d.baseEnv, ...(job.env ?? {}), PATH: `${d.ws.bin}:${d.baseEnv.PATH ?? ''}` };
    if (d.licenseFile) env.GRB_LICENSE_FILE = d.licenseFile;
    const r = await runInstall({
      script,
      cwd: d.ws.root,
      env,
      logFile,
      timeoutSeconds: job.installTimeoutSeconds,
      attempts: job.installAttempts,
      shouldStop: () => this.draining,
      onAttempt: (n) => d.log.info({ attempt: n }, 'running install script'),
      clock: this.clock,
    });
    const installLogKey = keys.instanceLog(job.name, d.instance, 'install.log');
    await d.backend.artifacts.putFile(installLogKey, logFile).catch((e: unknown) => d.log.warn({ err: e }, 'install log upload failed'));
    if (!r.ok) {
      d.log.error({ attempts: r.attempts, reason: r.reason }, 'install failed; this worker takes no task');
      await this.setState('INSTALL_FAILED', { detail: `${r.reason} (after ${r.attempts} attempts)`, installLogKey });
      return false;
    }
    await this.setState('READY', { installLogKey });
    return true;
  }

  private async loop(job: JobRecord, pool: SlotPool): Promise<number> {
    const { d } = this;
    let tasksRun = 0;
    let idleSince = this.clock.now();
    const early = new EarlyLook(d, job, () => this.clock.now());
    let failures = 0;
    let failingSince: number | undefined;
    const unreachableMs = (job.unreachableSeconds ?? DEFAULT_UNREACHABLE_S) * 1000;
    /** Take the slots that ended: a task counts once recorded; a failure to record it backs off. */
    const settle = async (leaving: boolean) => {
      for (const end of pool.takeEnded()) {
        idleSince = Math.max(idleSince, end.at);
        if (end.error === undefined) {
          tasksRun++;
          failures = 0;
          continue;
        }
        // AWS out of reach longer than the retries last (recording a finished task): the worker
        // stays. The message comes back after its visibility timeout and the task's lease runs
        // out, so this or another worker takes it again; nothing is lost.
        if (!isTransient(end.error)) throw end.error;
        if (leaving) d.log.warn({ err: end.error, task: end.task }, 'could not record the task; it comes back to the queue');
        else await this.backOff(++failures, end.error, 'could not handle the task; it comes back to the queue; backing off', { task: end.task });
      }
    };
    while (!this.draining) {
      await settle(false);
      if (this.draining) break;
      if (pool.free === 0) {
        await pool.oneEnded(this.wake.signal);
        continue;
      }
      // AWS out of reach for good (a broken network on this instance): do not bill for ever.
      // Leaving powers the instance off on EC2; Auto Scaling replaces it if work remains.
      if (failures === 0) failingSince = undefined;
      else failingSince ??= this.clock.now();
      if (failingSince !== undefined && this.clock.now() - failingSince > unreachableMs) {
        d.log.error({ failures, seconds: unreachableMs / 1000 }, 'AWS has been out of reach too long; this worker leaves');
        this.leftFor = 'unreachable';
        break;
      }
      if (await this.cap.reached()) {
        this.leftFor = 'cost-cap'; // the job's cost cap: no new task (cost-cap.ts)
        break;
      }
      // Idle only when every slot is.
      const idleLeft = job.idleSeconds * 1000 - (this.clock.now() - idleSince);
      if (pool.busy === 0 && idleLeft <= 0) {
        let decision;
        try {
          decision = await idleDecision(d, job, () => this.clock.now());
        } catch (e) {
          // A queue that is gone (job cleaned) means leave; AWS out of reach does not mean the
          // queue is empty: wait, then receive again (retry.ts).
          if (!isTransient(e)) break;
          await this.backOff(++failures, e, 'could not read whether a task can come back (queue depth, job, workers); backing off');
          idleSince = this.clock.now();
          continue;
        }
        failures = 0;
        if (decision === 'leave') break;
        idleSince = this.clock.now();
        continue;
      }
      let msgs;
      try {
        msgs = await d.queue.receive({
          // As many messages as there are free slots.
          max: Math.min(MAX_RECEIVE, pool.free),
          waitSeconds: receiveWaitSeconds({ busy: pool.busy, idleSeconds: job.idleSeconds, idleLeftMs: idleLeft, looked: early.done(idleSince) }),
          visibilitySeconds: job.visibilitySeconds,
        });
        failures = 0;
      } catch (e) {
        // The queue is gone (the job was cleaned while this worker idled): nothing can come.
        // Either adapter raises QueueNotFoundError (SQS's QueueDoesNotExist is mapped onto it).
        if (e instanceof QueueNotFoundError) {
          d.log.warn('the job\'s queue is gone (the job was cleaned); this worker leaves');
          this.leftFor = 'job-missing';
          break;
        }
        // A failed receive is "nothing found" after a pause that grows, never a hot spin.
        await this.backOff(++failures, e, 'receive failed; backing off');
        idleSince = this.clock.now();
        continue;
      }
      if (msgs.length === 0 && pool.busy === 0) {
        // Between back-to-back tasks the worker stays protected; it drops protection once idle.
        await this.protect(job.name, false);
        if (this.instanceState === 'BUSY') await this.setState('IDLE');
        // Once per idle stretch: leave at once when nothing can come back without a worker for it.
        if (await early.leaves(idleSince)) break;
      }
      for (const m of msgs) {
        if (this.draining) {
          await d.queue.release(m.receipt).catch(() => undefined);
          continue;
        }
        try {
          await this.startSlot(job, pool, m.task, m.receipt);
          failures = 0;
        } catch (e) {
          // The claim failed for longer than its retries last: as a failed record above.
          if (!isTransient(e)) throw e;
          await this.backOff(++failures, e, 'could not handle the task; it comes back to the queue; backing off', { task: m.task });
        }
        idleSince = this.clock.now();
      }
    }
    // Drained or leaving: the running slots finish (or, interrupted, give their tasks back).
    await pool.allEnded();
    await settle(true);
    return tasksRun;
  }

  /**
   * Claim a delivered task and run it in a free slot (slot.ts). The claim itself records this
   * instance as BUSY with the task (`gq status` reads the running tasks through it).
   */
  private async startSlot(job: JobRecord, pool: SlotPool, taskNo: number, receipt: string): Promise<void> {
    const { d } = this;
    const run = await this.exclusive(async () => {
      const claimed = await claimTask(d, job, taskNo, receipt, () => this.clock.now());
      if (!claimed) return undefined;
      if (claimed.job.capStop) {
        // The cost cap was reached since this worker last read the job (it reads it every few
        // seconds): the claim read the job item too. The task goes back unrun and uncharged, and
        // the worker takes no other.
        this.cap.sawStop(claimed.job.capStop);
        await this.giveBackUnrun(job, taskNo, receipt, 'the job reached its cost cap');
        return undefined;
      }
      this.instanceState = 'BUSY';
      await this.protect(job.name, true);
      return pool.start({ ...d, onMovedToOnDemand: () => void this.movedToOnDemand++ }, claimed.job, claimed.task, receipt);
    });
    if (run && this.interrupted) {
      if (this.interrupted === 'release') this.stoppedOnSpot++;
      run.stop(this.interrupted);
    }
    // Counted for the cost figures from the claim; the pool's end handler closes it (runPrepared).
    if (run) this.usageEnds.set(taskNo, this.usage.startTask());
  }

  /** A task claimed but not to be run: QUEUED again with its attempt not counted, its message visible again. */
  private async giveBackUnrun(job: JobRecord, taskNo: number, receipt: string, reason: string): Promise<void> {
    const { d } = this;
    const cr = await persist('give the task back', () => d.backend.status.complete(job.name, taskNo, d.instance, { kind: 'released', reason }), { log: d.log });
    d.log.info({ task: taskNo, reason }, 'task given back unrun');
    if (cr.kind === 'lost') return;
    await d.queue.release(receipt, 0).catch((e: unknown) => d.log.warn({ err: e, task: taskNo }, 'could not give the message back; it comes back after its visibility timeout'));
  }

  private async protect(job: string, on: boolean): Promise<void> {
    this.protection ??= new ScaleInProtection(
      (want) => this.d.backend.fleet.protect(job, this.d.instanceType, this.d.instance, want, this.d.pool),
      (err, want) => this.d.log.warn({ err, on: want }, 'could not change scale-in protection'),
    );
    await this.protection.want(on);
  }

  /** The last worker of a finished job deletes its licence (gq commands do so too). */
  private async dropLicenceIfFinished(): Promise<void> {
    const { d } = this;
    if (!d.licenseFile) return; // no licence here: nothing to delete, no call
    try {
      const job = await d.backend.status.getJob(d.job);
      if (job?.licenseKey && job.counts.queued + job.counts.running === 0) await d.backend.secrets.deleteLicence(d.job);
    } catch (e) {
      d.log.warn({ err: e }, 'could not delete the licence of the finished job');
    }
  }

  private async leave(): Promise<void> {
    const { d } = this;
    // Deletes held back to be batched go out before this worker is gone.
    await d.queue.flush?.().catch((e: unknown) => d.log.warn({ err: e }, 'could not delete finished messages'));
    if (this.instanceState !== 'INSTALL_FAILED') await this.setState('STOPPED', this.interrupted === 'release' ? { detail: INTERRUPTED_DETAIL } : {});
    await this.dropLicenceIfFinished();
    if (this.movedToOnDemand < this.stoppedOnSpot) {
      // Spot: EC2 reclaims this instance anyway. Leaving the group here would lower its desired
      // capacity, and the task just given back would wait, queued, for a gq command to restore
      // it. Not leaving lets Auto Scaling replace the reclaimed (or powered-off) instance, and
      // the replacement runs the task.
      d.log.info('Spot interruption: the group replaces this instance for the task given back');
      return;
    }
    await d.backend.fleet
      .terminateSelf(d.job, d.instanceType, d.instance)
      .catch((e: unknown) => d.log.warn({ err: e }, 'could not leave the fleet'));
  }
}
