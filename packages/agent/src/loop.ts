/**
 * The worker's life: prepare (code, licence, install) → loop (receive → claim → run) → leave
 * (after the queue stayed empty for the idle period, on SIGTERM, or on a Spot interruption).
 * Written once against the four ports; the local backend and EC2 run exactly this.
 */
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyDetail, failDeadLettered, keys, MAX_VISIBILITY_SECONDS, QueueNotFoundError, registerSecret, type InstanceState, type JobRecord, type TaskState } from '@gq/common';
import type { AgentDeps } from './deps.js';
import { realClock, type Clock } from './clock.js';
import { runInstall } from './install.js';
import { runTask, type TaskRun } from './attempt.js';
import { backoffMs, isTransient } from './retry.js';
import { unpackCode } from './workspace.js';
import { ScaleInProtection } from './protection.js';
import { decideIdle, readIdleFacts } from './idle-leave.js';
import { Usage } from './usage.js';
import { CostCap } from './cost-cap.js';

export interface AgentControl {
  /** First SIGTERM: take no more work, let the running task finish. */
  drain(): void;
  /** Second SIGTERM or Spot notice: stop the running task and give it back. */
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
  private current: TaskRun | undefined;
  /** A Spot interruption stopped a running task, which was given back to the queue. */
  private gaveBackOnSpot = false;
  private readonly wake = new AbortController();
  private instanceState: InstanceState = 'BOOTING';
  /** Scale-in protection as AWS accepted it (protection.ts). */
  private protection: ScaleInProtection | undefined;
  /** Why the loop ended, when not idle, drained or interrupted. */
  private leftFor: 'job-missing' | 'unreachable' | 'cost-cap' | undefined;
  private readonly clock: Clock;
  private readonly usage: Usage;
  private readonly cap: CostCap;

  constructor(private readonly d: AgentDeps) {
    this.clock = d.clock ?? realClock;
    this.usage = new Usage(() => this.clock.now(), d.billing);
    this.cap = new CostCap(d.backend.status, d.job, () => this.clock.now(), d.log);
  }

  drain(): void {
    this.draining = true;
    this.wake.abort();
  }

  interrupt(reason: 'release' | 'shutdown'): void {
    this.draining = true;
    this.interrupted = reason;
    if (this.current && reason === 'release') this.gaveBackOnSpot = true;
    this.current?.stop(reason);
    this.wake.abort();
  }

  private stateExtra: { detail?: string; installLogKey?: string; task?: number } = {};

  private async setState(state: InstanceState, extra: { detail?: string; installLogKey?: string } = {}): Promise<void> {
    this.instanceState = state;
    this.stateExtra = { ...this.stateExtra, ...extra };
    if (state !== 'BUSY') {
      if (extra.detail === undefined) this.stateExtra.detail = undefined;
      this.stateExtra.task = undefined;
    }
    await this.d.backend.status
      .putInstance({
        job: this.d.job,
        instance: this.d.instance,
        instanceType: this.d.instanceType,
        state,
        heartbeatAt: new Date(this.clock.now()).toISOString(),
        pid: process.pid,
        ...this.stateExtra,
        ...this.usage.record(state),
      })
      .catch((e: unknown) => this.d.log.warn({ err: e }, 'could not record instance state'));
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
    const tasksRun = await this.loop(job);
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

  private async loop(job: JobRecord): Promise<number> {
    const { d } = this;
    let tasksRun = 0;
    let idleSince = this.clock.now();
    let failures = 0;
    let failingSince: number | undefined;
    const unreachableMs = (job.unreachableSeconds ?? DEFAULT_UNREACHABLE_S) * 1000;
    while (!this.draining) {
      // AWS out of reach for good (a broken network on this instance): do not bill for ever.
      // Leaving powers the instance off on EC2; Auto Scaling replaces it if work remains.
      if (failures === 0) failingSince = undefined;
      else failingSince ??= this.clock.now();
      if (failingSince !== undefined && this.clock.now() - failingSince > unreachableMs) {
        d.log.error({ failures, seconds: unreachableMs / 1000 }, 'AWS has been out of reach too long; this worker leaves');
        this.leftFor = 'unreachable';
        break;
      }
      if (await this.cap.reached(job.maxCost)) {
        this.leftFor = 'cost-cap'; // the job's cost cap: no new task (cost-cap.ts)
        break;
      }
      const idleLeft = job.idleSeconds * 1000 - (this.clock.now() - idleSince);
      if (idleLeft <= 0) {
        let decision;
        try {
          decision = await this.idleDecision(job);
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
          max: 1,
          waitSeconds: Math.max(1, Math.min(20, Math.ceil(idleLeft / 1000))),
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
      if (msgs.length === 0) {
        // Between back-to-back tasks the worker stays protected; it drops protection once idle.
        await this.protect(job.name, false);
        if (this.instanceState === 'BUSY') await this.setState('IDLE');
      }
      for (const m of msgs) {
        if (this.draining) {
          await d.queue.release(m.receipt).catch(() => undefined);
          continue;
        }
        try {
          if (await this.handle(job, m.task, m.receipt)) {
            tasksRun++;
          }
          failures = 0;
        } catch (e) {
          // AWS out of reach longer than the retries last (claim, or recording a finished task):
          // the worker stays. The message comes back after its visibility timeout and the task's
          // lease runs out, so this or another worker takes it again; nothing is lost.
          if (!isTransient(e)) throw e;
          await this.backOff(++failures, e, 'could not handle the task; it comes back to the queue; backing off', { task: m.task });
        }
        idleSince = this.clock.now();
      }
    }
    return tasksRun;
  }

  /**
   * Idle for the idle period: leave only when no task of this type can come back to the queue,
   * or another worker of the type stays for it (the rule: idle-leave.ts). The worker that stays
   * sends again the messages of QUEUED tasks that have none (dropped by SQS's retention).
   */
  private async idleDecision(job: JobRecord): Promise<'leave' | 'stay'> {
    const { d } = this;
    const type = d.instanceType;
    const tasksOfType = async (states: readonly TaskState[]) =>
      (await d.backend.status.listTasks(job.name, { states })).filter((t) => t.instanceType === type);
    const { facts, queuedTasks } = await readIdleFacts(
      {
        depth: () => d.queue.depth(),
        job: () => d.backend.status.getJob(job.name),
        tasksOfType,
        instances: () => d.backend.status.listInstances(job.name),
      },
      d.instance,
      type,
      () => this.clock.now(),
    );
    const decision = decideIdle(facts);
    if (decision.action === 'resend') {
      // A task whose message went to the dead-letter queue is not lost: it is recorded as
      // FAILED (as gq commands do), never sent again (that message may crash every agent).
      const failed = await failDeadLettered(d.backend.status, job, d.queue);
      if (failed.length > 0) d.log.warn({ tasks: failed }, 'tasks whose message went to the dead-letter queue recorded as failed');
      const tasks = failed.length === 0 && queuedTasks ? queuedTasks : (await tasksOfType(['QUEUED'])).map((t) => t.task);
      d.log.warn({ tasks: tasks.length, depth: facts.depth }, 'queued tasks have no message in the queue (dropped after its retention period?): sending them again');
      // A duplicate is harmless: the claim is conditional, a second delivery finds the task taken.
      if (tasks.length > 0) await d.queue.send(tasks);
    } else if (decision.action === 'stay' && decision.why === 'keeper') {
      d.log.debug({ depth: facts.depth, running: facts.running, queued: facts.queued }, 'idle, staying: a task of this type can come back');
    }
    return decision.action === 'leave' ? 'leave' : 'stay';
  }

  /** true when the task was run here. */
  private async handle(job: JobRecord, taskNo: number, receipt: string): Promise<boolean> {
    const { d } = this;
    const claim = await d.backend.status.claim(job.name, taskNo, d.instance, job.visibilitySeconds * 1000);
    switch (claim.kind) {
      case 'missing':
      case 'done':
      case 'exhausted':
        await d.queue.delete(receipt);
        return false;
      case 'leased': {
        // A duplicate delivery while the holder is alive: hide it again, never run it twice.
        const secs = hideLeased(claim.leaseUntil, claim.runningSince, job.visibilitySeconds, this.clock.now());
        d.log.info({ task: taskNo, hideSeconds: secs }, 'task delivered again while its lease is held by another worker: hidden again, not run');
        await d.queue.extend(receipt, secs);
        return false;
      }
      case 'claimed':
        break;
    }
    // The claim itself recorded this instance as BUSY with its task (`gq status` reads the running
    // tasks through it): only note it here, for the periodic instance heartbeat and the IDLE update.
    this.instanceState = 'BUSY';
    this.stateExtra = { ...this.stateExtra, task: taskNo, detail: busyDetail(taskNo) };
    await this.protect(job.name, true);
    const run = runTask(d, claim.job, claim.task, receipt);
    this.current = run;
    if (this.interrupted) {
      if (this.interrupted === 'release') this.gaveBackOnSpot = true;
      run.stop(this.interrupted);
    }
    const ended = this.usage.startTask(() => this.setState(this.instanceState));
    try {
      await run.done;
    } finally {
      this.current = undefined;
      await ended();
    }
    return true;
  }

  private async protect(job: string, on: boolean): Promise<void> {
    this.protection ??= new ScaleInProtection(
      (want) => this.d.backend.fleet.protect(job, this.d.instanceType, this.d.instance, want),
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
    if (this.instanceState !== 'INSTALL_FAILED') await this.setState('STOPPED');
    await this.dropLicenceIfFinished();
    if (this.gaveBackOnSpot) {
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
