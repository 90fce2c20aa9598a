/**
 * The four ports of gq (and the licence's SecretStore). Each backend (local, aws) implements them;
 * the agent loop and the CLI commands are written once against these interfaces and cannot tell
 * the backends apart. The errors they raise are in port-errors.ts, the same classes on both.
 * The contract suites (packages/common/test/contract/) run the same cases on both backends.
 * Where the backends still differ, the member's comment says how and why.
 */
import type {
  CapStop,
  InstanceRecord,
  JobRecord,
  JobSpec,
  Lifecycle,
  NewTask,
  TaskRecord,
} from './job/model.js';
import type { TaskState } from './job/states.js';
import type { Pool } from './job/on-demand.js';

// ---------------------------------------------------------------------------------------------
// TaskQueue

/** A message taken from a queue. The body names the task; the command lives in the StatusStore. */
export interface ReceivedMessage {
  task: number;
  /** Opaque handle for extend / release / delete of this delivery. */
  receipt: string;
  /** How many times this message has been received, this delivery included. */
  receiveCount: number;
}

export interface QueueDepth {
  /** Messages that a receive could return now. */
  visible: number;
  /** Messages received and not yet deleted or released (invisible). */
  inFlight: number;
  /** Messages waiting for their delay to pass. */
  delayed: number;
}

export interface QueueOptions {
  /** Default visibility timeout of a received message, seconds. */
  visibilitySeconds: number;
  /** After this many receives a message goes to the dead-letter queue instead. */
  maxReceiveCount: number;
}

/**
 * The longest a received message stays hidden: SQS shows it again at most 12 hours after it was
 * received (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html);
 * the local queue keeps the same limit so that the backends agree.
 */
export const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * One queue per (job, instance type), with its dead-letter queue. After its provider's `remove`,
 * `send` and `receive` throw QueueNotFoundError on both backends (and so does `depth` on SQS; the
 * local queue answers depth, deadLetters and purge of a removed queue as of an empty one).
 */
export interface TaskQueue {
  readonly job: string;
  readonly instanceType: string;
  /** Which of the type's queues (job/on-demand.ts): absent or 'main' for its own. */
  readonly pool?: Pool;
  /** Enqueue one message per task (batched by the adapter). */
  send(tasks: readonly number[]): Promise<void>;
  /** Long poll for up to `max` messages, hiding them for `visibilitySeconds`. */
  receive(opts: { max: number; waitSeconds: number; visibilitySeconds: number }): Promise<ReceivedMessage[]>;
  /** Keep a message hidden for `seconds` more from now (heartbeat). */
  extend(receipt: string, seconds: number): Promise<void>;
  /** Make a message visible again after `delaySeconds` (0 = now). */
  release(receipt: string, delaySeconds?: number): Promise<void>;
  /**
   * A stale receipt (an older delivery) is ignored on both backends. A malformed one (not a
   * receipt at all) throws ReceiptInvalidError locally; SQS answers it with the same
   * ReceiptHandleIsInvalid as a stale one, so the SQS adapter ignores it too.
   */
  delete(receipt: string): Promise<void>;
  /**
   * Send whatever deletes the adapter still holds back to batch them (SQS with `deleteBatchMs`),
   * and wait for them. A worker calls it before it leaves. Adapters that never hold back omit it.
   */
  flush?(): Promise<void>;
  depth(): Promise<QueueDepth>;
  /** Task numbers of the messages that reached the dead-letter queue. */
  deadLetters(): Promise<number[]>;
  /** Drop every message (cancel). */
  purge(): Promise<void>;
}

/** `pool`: which of the type's queue pairs (job/on-demand.ts); default 'main', the type's own. */
export interface QueueProvider {
  /** Create the queue pair if missing (idempotent) and return it. */
  ensure(job: string, instanceType: string, opts: QueueOptions, pool?: Pool): Promise<TaskQueue>;
  /** Open an existing queue (the agent's side). */
  open(job: string, instanceType: string, pool?: Pool): Promise<TaskQueue>;
  /** Delete the queue pair (clean). Missing queues are not an error. */
  remove(job: string, instanceType: string, pool?: Pool): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// StatusStore

/** What a claimer says about where the attempt runs (recorded in the task's history). */
export interface ClaimOptions {
  instanceType?: string;
  lifecycle?: Lifecycle;
}

/** What a worker learns when it tries to claim a task it received. */
export type ClaimResult =
  /**
   * The task is ours: state RUNNING, attempts incremented, lease held. `job` is for its spec and
   * `cancelRequested`; its counts are not to be relied on: the local store hands them back after
   * this claim's change, the DynamoDB store does not read its counter shards for a claim.
   */
  | { kind: 'claimed'; task: TaskRecord; job: JobRecord }
  /** Another worker holds a live lease: hide the message until about `leaseUntil`. */
  | { kind: 'leased'; leaseUntil: number; /** Epoch ms the holder started the task. */ runningSince?: number }
  /** The task is already final (duplicate delivery): delete the message. */
  | { kind: 'done'; state: TaskState }
  /** The task's workers were lost too often; it is now FAILED: delete the message. */
  | { kind: 'exhausted'; task: TaskRecord }
  /** No such task (a stray message): delete it. */
  | { kind: 'missing' };

export type HeartbeatResult = 'ok' | 'lost' | 'cancel';

export type TaskOutcome =
  | {
      kind: 'succeeded';
      exitCode: number;
      resultKey?: string;
      logKey?: string;
      outputKeys?: string[];
      error?: string;
    }
  | {
      kind: 'failed';
      exitCode?: number;
      signal?: string;
      error: string;
      stderrTail?: string;
      logKey?: string;
      /** false: do not retry whatever attempts remain. */
      retryable: boolean;
      /** The attempt was stopped by the job's per-task timeout (its history entry says 'timeout'). */
      timedOut?: boolean;
    }
  /**
   * Given back unrun or interrupted (SIGTERM, Spot): not charged as an attempt. `interrupted`:
   * its instance was interrupted (counted in the task's `interruptions`); `checkpointKey`: the
   * checkpoint saved on the way out (recorded for the next attempt).
   */
  | { kind: 'released'; reason: string; interrupted?: boolean; checkpointKey?: string }
  | { kind: 'cancelled'; logKey?: string };

/** The state a task ended in after `complete`, or 'lost' if the lease was no longer ours. */
export type CompleteResult = { kind: 'recorded'; state: TaskState } | { kind: 'lost' };

export interface ListTasksOptions {
  states?: readonly TaskState[];
  /** At most this many (the lowest-numbered); a whole number from 1. */
  limit?: number;
}

export interface StatusStore {
  /**
   * Record a job and its tasks (QUEUED). Idempotent: re-running a submit that stopped half way
   * creates only the missing tasks and never counts a task twice. Checks job/store-rules.ts
   * first: task numbers, and JobExistsError when another job holds the name.
   */
  createJob(spec: JobSpec, tasks: readonly NewTask[]): Promise<{ created: number; existing: number }>;
  getJob(name: string): Promise<JobRecord | undefined>;
  /** All jobs, newest first. */
  listJobs(): Promise<JobRecord[]>;
  getTask(job: string, task: number): Promise<TaskRecord | undefined>;
  /**
   * The job's tasks (in `states`, if given) in task order; with `limit`, the first `limit` of them
   * only, the read stopping there (gq status shows the first few failures of a job of 100,000).
   */
  listTasks(job: string, opts?: ListTasksOptions): Promise<TaskRecord[]>;
  /**
   * The job's tasks in task order, each once, at most `pageSize` a page (default 1000; a page may
   * hold fewer), for a command that reads them all without holding them all (gq results of
   * 100,000 tasks).
   */
  taskPages(job: string, pageSize?: number): AsyncIterable<TaskRecord[]>;
  /** Conditional take-over of a task by `instance` with a lease of `leaseMs`. */
  claim(
    job: string,
    task: number,
    instance: string,
    leaseMs: number,
    opts?: ClaimOptions,
  ): Promise<ClaimResult>;
  /** Renew the lease; says whether it is still ours and whether a cancel was asked for. */
  heartbeat(job: string, task: number, instance: string, leaseMs: number): Promise<HeartbeatResult>;
  /** Record the outcome of the attempt held by `instance`. Retries are decided here. */
  complete(job: string, task: number, instance: string, outcome: TaskOutcome): Promise<CompleteResult>;
  /**
   * Fail a task that can no longer run (queued, or held by a lease that ran out), without
   * counting an attempt; false when it is final or a live worker holds it.
   */
  failUnrun(job: string, task: number, reason: string): Promise<boolean>;
  /**
   * Set a progress tag on a task (`gq-agent tag`): the tags only, no version bump, so a tag never
   * makes the task's heartbeat or complete lose its version check. TaskNotFoundError when the task
   * does not exist; a UserError beyond MAX_TASK_TAGS keys.
   */
  setTag(job: string, task: number, key: string, value: string): Promise<void>;
  /** Cancel: QUEUED → CANCELLED now; RUNNING tasks are asked to stop (or cancelled if their worker is gone). */
  cancel(job: string): Promise<{ cancelled: number; stopping: number }>;
  /** FAILED → QUEUED with attempts reset; returns the task numbers, in order. */
  resubmitFailed(job: string): Promise<NewTask[]>;
  /** Set the job's cost cap (`gq resume --max-cost`); JobNotFoundError when there is no such job. */
  setMaxCost(job: string, maxCost: number): Promise<void>;
  /**
   * Record that the job reached its cost cap (`capStop`), one conditional write: only while no
   * stop is recorded and the cap is still `stop.maxCost` (a raise in between wins). true when this
   * call recorded it. `setMaxCost` clears it. JobNotFoundError when there is no such job.
   */
  markCapReached(job: string, stop: CapStop): Promise<boolean>;
  putInstance(rec: InstanceRecord): Promise<void>;
  listInstances(job: string): Promise<InstanceRecord[]>;
  /** Remove everything recorded about a job (used by clean with --purge). */
  deleteJob(job: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// ArtifactStore

/**
 * Keys follow artifact-keys.ts on both backends (ArtifactKeyError otherwise); a missing key read
 * is ArtifactNotFoundError.
 */
export interface ArtifactStore {
  exists(key: string): Promise<boolean>;
  /** `onProgress`, if given, hears the bytes sent so far (S3; the local store copies at once and says nothing). */
  putFile(key: string, file: string, onProgress?: (bytesSent: number) => void): Promise<void>;
  putBytes(key: string, body: Uint8Array | string): Promise<void>;
  /** Download to `file`, creating its folder. */
  getFile(key: string, file: string): Promise<void>;
  getBytes(key: string): Promise<Buffer>;
  /** The last `maxBytes` bytes (all of them when there are fewer): the tail of a log, whatever its size. */
  getTail(key: string, maxBytes: number): Promise<Buffer>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Every key that starts with `prefix` (a plain string prefix, as S3's); "" is refused. */
  deletePrefix(prefix: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// SecretStore

/**
 * A job's licence (the only secret gq keeps): written by submit with an expiry, read by the
 * job's own agents, deleted when the job is finished or cleaned. On AWS an item of the job's
 * partition in the status table (so only the job's own role can read it, and the table's TTL
 * removes it after `expiresAt` even if no gq command ever runs again).
 */
export interface SecretStore {
  /** Store (or replace) the licence of `job`, to be dropped at `expiresAt` (epoch seconds). */
  putLicence(job: string, text: string, expiresAt: number): Promise<void>;
  /** The licence text; undefined when there is none or it has expired. */
  getLicence(job: string): Promise<string | undefined>;
  /** Delete it (nothing to delete is fine). */
  deleteLicence(job: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Fleet

/**
 * Where an instance is in its life, in the same words on both backends: `starting` (launched, not
 * yet in service), `running`, `leaving` (on its way out: still there, no longer a worker) and
 * `gone`. Callers decide on this, never on the provider's own `state` text.
 */
export type InstancePhase = 'starting' | 'running' | 'leaving' | 'gone';

export interface FleetInstance {
  id: string;
  /** Backend-specific life cycle state (e.g. InService, Terminating, running): for people to read. */
  state: string;
  phase: InstancePhase;
  protected: boolean;
  /** Whether the fleet considers it healthy (AWS: Auto Scaling's HealthStatus). */
  healthy: boolean;
}

/** Why a group's instances do not start (AWS: its failed scaling activities). */
export interface LaunchProblem {
  /** One of launch-failures.ts LAUNCH_CAUSES, e.g. "vcpu-quota", "marketplace-terms", "other". */
  cause: string;
  /** The provider's own words (AWS: the newest failed activity's StatusMessage). */
  reason: string;
  /** What the user should do about it. */
  advice: string;
  /** Failed launches since the group's last successful one. */
  failedLaunches: number;
  /** ISO time of the first of them. */
  since: string;
  /** Expected to clear by itself soon (an instance profile not yet visible). */
  transient: boolean;
}

export interface FleetGroup {
  instanceType: string;
  /** 'on-demand': a Spot job's fallback group of the type (job/on-demand.ts); absent: the type's own. */
  pool?: 'on-demand';
  desired: number;
  max: number;
  instances: FleetInstance[];
  /** Set when launches fail; absent when they succeed (and always on the local backend). */
  launchProblem?: LaunchProblem;
}

/** An instance launched for a job, as the provider remembers it (also after it is gone). */
export interface LaunchedInstance {
  id: string;
  instanceType: string;
  /** ISO time of the launch. */
  launchedAt: string;
  /** Provider state: pending, running, shutting-down, terminated, stopping, stopped. */
  state: string;
  /** Why it changed state, as the provider says (EC2 StateReason), when it did. */
  stateReason?: string;
}

export interface Fleet {
  /**
   * Make (job, instance type) have `desired` workers (clamped to the group's maximum), creating
   * the group if needed. Never lowers capacity below the workers that are busy. The local fleet
   * never lowers it at all (it cannot tell an idle worker from a busy one without asking it; its
   * workers leave by themselves when idle, and gq only ever asks it for more).
   */
  ensureCapacity(job: JobRecord, instanceType: string, desired: number, pool?: Pool): Promise<FleetGroup>;
  /**
   * AWS: the group of (job, type, pool) exists, created at desired 0 when missing; an existing
   * one is left as it is. So that an agent, which may not create groups, can raise it
   * (raiseCapacity). The local fleet has no groups to make ahead.
   */
  ensureGroup?(job: JobRecord, instanceType: string, pool: Pool): Promise<void>;
  /**
   * AWS, for the agents: raise an existing group so that it has enough workers for `pending`
   * tasks (scaling.ts raisedDesired: never lower, never above MaxSize). Its new desired
   * capacity, or undefined when the group does not exist. `signal` bounds the calls.
   */
  raiseCapacity?(job: string, instanceType: string, pending: number, slotsPerInstance: number, pool: Pool, signal?: AbortSignal): Promise<number | undefined>;
  /**
   * The job's groups, by instance type. AWS lists every group the job has, at desired 0 too; the
   * local fleet's groups exist only through their workers, so it lists the types that have live
   * ones. Either way, a caller counts workers by `phase`, never by the list's length.
   */
  describe(job: string): Promise<FleetGroup[]>;
  /** Scale-in protection for a busy worker (of the type's group in `pool`, default its own). */
  protect(job: string, instanceType: string, instance: string, on: boolean, pool?: Pool): Promise<void>;
  /**
   * The worker leaves the fleet and the desired capacity goes down by one. The local fleet has no
   * provider of its own: its members are the worker records in the status store, so leaving is
   * writing the record STOPPED (an INSTALL_FAILED record stays as it is) — the agent writes its
   * record before it calls this anyway, so the store ends the same on both backends.
   */
  terminateSelf(job: string, instanceType: string, instance: string): Promise<void>;
  /** Set every group of the job to 0 (cancel). */
  stop(job: string): Promise<void>;
  /** Delete the job's groups and launch configuration (clean). */
  remove(job: string): Promise<void>;
  /**
   * Instances launched for the job lately, those already gone included (AWS: EC2 keeps
   * terminated instances visible for about an hour). Backends whose workers always report at
   * once (local) omit it: a boot that never reports cannot happen there.
   */
  launched?(job: string): Promise<LaunchedInstance[]>;
  /** The instance's console output, when the provider keeps one and gq may read it. */
  consoleOutput?(instance: string): Promise<string | undefined>;
}

/** The group of `pool` (default the type's own) among a job's groups. */
export function groupOf(groups: readonly FleetGroup[], instanceType: string, pool: Pool = 'main'): FleetGroup | undefined {
  return groups.find((g) => g.instanceType === instanceType && (g.pool ?? 'main') === pool);
}

/** The four ports of one backend. */
export interface Backend {
  readonly name: 'local' | 'aws';
  readonly queues: QueueProvider;
  readonly status: StatusStore;
  readonly artifacts: ArtifactStore;
  readonly fleet: Fleet;
  readonly secrets: SecretStore;
  close(): Promise<void>;
}
