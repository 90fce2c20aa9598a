/**
 * Folder common/src/job: the job and its tasks as data and pure rules (model, states, transitions, job file, names).
 *
 * The job and task model shared by both backends (plain data, no I/O).
 */
import type { Counts, TaskState } from './states.js';

export type BackendName = 'local' | 'aws';

/** An extra folder copied into the code bundle (the seed's --extra_input_code_path). */
export interface InputMapping {
  /** Folder or file on the submitting machine. */
  local: string;
  /** Relative path inside the task's copy of the code folder. */
  remote: string;
}

/** Everything an agent needs to run the tasks of a job; fixed at submit time. */
export interface JobSpec {
  name: string;
  backend: BackendName;
  /** ISO time of submission. */
  createdAt: string;
  total: number;
  /** Number of tasks per instance type. */
  instanceTypes: Record<string, number>;
  /** Artifact key of the code bundle (content-addressed, shared between jobs). */
  codeKey: string;
  /** Artifact key of the install script, when the job has one. */
  installKey?: string;
  /** Results file, relative to the code folder (the seed's results_file). */
  resultsPath: string;
  /** Extra outputs to upload, relative to the code folder. */
  outputs: string[];
  /** Attempts per task = retries + 1. */
  maxAttempts: number;
  /** Per-task timeout in seconds; 0 = none. */
  timeoutSeconds: number;
  installTimeoutSeconds: number;
  installAttempts: number;
  /** Queue visibility / task lease in seconds (renewed by the heartbeat). */
  visibilitySeconds: number;
  /** A worker exits after the queue has been empty this long. */
  idleSeconds: number;
  /** A worker leaves after AWS (or the local store) was out of reach this long; absent in jobs recorded before: 1800. */
  unreachableSeconds?: number;
  /** Artifact key of the stored licence, when one was given. Never the licence itself. */
  licenseKey?: string;
  /** Extra environment for tasks (never secrets). */
  env?: Record<string, string>;
  /** Tasks one worker of each instance type runs at once (job/slots.ts); absent: 1 for every type. */
  slots?: Record<string, number>;
  /** The cost cap in USD (`--max-cost`): at it, the job takes no new instance or task. */
  maxCost?: number;
  /**
   * Spot jobs (AWS): after this many interruptions of one task, its next attempt runs on the
   * type's on-demand group (job/on-demand.ts). Absent or 0: never (jobs without Spot too).
   */
  spotInterruptions?: number;
  /**
   * How the AWS backend buys the job's instances, chosen at submit (`--spot`): every gq command
   * that starts workers later uses it, whatever its own flags. Absent locally and in jobs
   * recorded before (then the command's --spot decides).
   */
  market?: 'spot' | 'on-demand';
}

export interface JobRecord extends JobSpec {
  counts: Counts;
  cancelRequested: boolean;
  updatedAt: string;
  /**
   * Set once the job reached its cost cap, by whoever saw it first (an agent or a gq command);
   * cleared by `gq resume --max-cost`. Stored beside `maxCost` in the spec, so that one write
   * raises the cap and clears it.
   */
  capStop?: CapStop;
  /** A Spot job's tasks moved to on-demand, per instance type (job/on-demand.ts); absent: none. */
  movedToOnDemand?: Record<string, number>;
}

/** The figures of the moment a job reached its cost cap (`capStop`). */
export interface CapStop {
  /** ISO time it was seen. */
  at: string;
  /** The cap it reached (the one in force then). */
  maxCost: number;
  spend: number;
  committed: number;
  next: number;
  /** The instance (or `gq`) that saw it. */
  by: string;
}

/** One row of the job file. */
export interface NewTask {
  /** 1-based row number in the job file (header excluded). */
  task: number;
  instanceType: string;
  command: string;
}

export interface TaskRecord extends NewTask {
  job: string;
  state: TaskState;
  /** Attempts started so far (a released attempt is given back). */
  attempts: number;
  /** Instance holding the lease while RUNNING. */
  instance?: string;
  /** The instance (or local worker) of the latest attempt, kept after it ends (gq results' tasks.csv). */
  lastInstance?: string;
  /** Epoch ms until which the holder's lease is live. */
  leaseUntil?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: string;
  /** Why the last attempt failed, in one line. */
  error?: string;
  /** Last lines of the last attempt's stderr. */
  stderrTail?: string;
  /** Progress tags set with `gq-agent tag KEY VALUE`. */
  tags: Record<string, string>;
  /** When each tag was last set (ISO time, by setTag); a tag set by an older gq has none. */
  tagTimes?: Record<string, string>;
  resultKey?: string;
  logKey?: string;
  outputKeys?: string[];
  cancelRequested?: boolean;
  /**
   * Attempts given back because their instance was interrupted (a Spot notice): never charged as
   * attempts (`attempts` gives them back), counted here. Absent: none.
   */
  interruptions?: number;
  /**
   * Artifact key of the task's checkpoint folder (GQ_CHECKPOINT_DIR, packed), saved when an
   * attempt was interrupted and restored into the next attempt's folder. Kept once written.
   */
  checkpointKey?: string;
  /**
   * The task's attempts, oldest first (at most MAX_ATTEMPT_HISTORY, the oldest dropped): one entry
   * per claim, closed by the attempt's end. Interrupted attempts are here too (uncharged).
   * Absent on records written before it existed.
   */
  history?: AttemptRecord[];
  updatedAt: string;
  /** Optimistic-concurrency version: every write is conditional on the version it read. */
  version: number;
}

export const INSTANCE_STATES = [
  'BOOTING',
  'INSTALLING',
  'READY',
  'INSTALL_FAILED',
  'BUSY',
  'IDLE',
  'STOPPED',
  'BOOT_FAILED', // written by the UserData (submitter/src/userdata.ts): boot failed, the instance left its group
] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export interface InstanceRecord {
  job: string;
  instance: string;
  instanceType: string;
  state: InstanceState;
  /** ISO time of the last heartbeat. */
  heartbeatAt: string;
  /** Free text: why install failed, which task is running, ... */
  detail?: string;
  /** The task it runs while BUSY (set by the claim); with several slots, the first of `tasks`. */
  task?: number;
  /** Every task it runs now, one per busy slot (the claim adds one, the worker removes the finished ones). */
  tasks?: number[];
  /** Artifact key of the install log, when there is one. */
  installLogKey?: string;
  /** Local backend: worker pid. */
  pid?: number;
  /**
   * Local backend (Linux): when that process started (field 22 of /proc/<pid>/stat, clock ticks
   * since boot), so that a recycled pid is never taken for the worker (local/procs.ts).
   */
  pidStart?: string;
  /** Cost accounting (agent/src/usage.ts): ISO times of launch, boot done (agent up), install done, and the end. */
  launchedAt?: string;
  bootedAt?: string;
  installedAt?: string;
  endedAt?: string;
  /** Seconds spent running tasks, and ready but without one, so far. */
  busySeconds?: number;
  idleSeconds?: number;
  /** Attempts it finished (any outcome), and the sum of their run times in seconds: the estimate's mean. */
  tasksRun?: number;
  taskSeconds?: number;
  /** How the instance is bought (IMDS instance-life-cycle); 'local' for a local worker. */
  lifecycle?: Lifecycle;
  /** USD per hour it ran at (0 locally); absent when gq does not know the price. */
  pricePerHour?: number;
  /** Where the price came from, e.g. "on-demand table 2025-01", "spot us-east-1a". */
  priceSource?: string;
  /** 'on-demand': a worker of a Spot job's on-demand fallback group (job/on-demand.ts); absent: the type's own. */
  pool?: 'on-demand';
  /** GB of its root EBS volume (gp3, the launch template's size): billed beside the instance. */
  volumeGb?: number;
}

/** The `detail` of a BUSY instance record: the task(s) it runs (the same text on every backend). */
export const busyDetail = (task: number | readonly number[]): string =>
  typeof task === 'number' || task.length === 1 ? `task ${typeof task === 'number' ? task : task[0]}` : `tasks ${task.join(', ')}`;
/** The `detail` of the STOPPED record of an instance that left on a Spot interruption notice (`gq status` counts them per type). */
export const INTERRUPTED_DETAIL = 'left on a Spot interruption notice';

export type Lifecycle = 'on-demand' | 'spot' | 'local';

/** How one attempt of a task ended (absent while it runs). */
export type AttemptOutcome =
  | 'succeeded'
  | 'failed'
  | 'timeout'
  | 'interrupted'
  | 'released'
  | 'cancelled'
  | 'lost';

/** One attempt of a task, as kept in TaskRecord.history. */
export interface AttemptRecord {
  /** Instance or local worker that ran it. */
  instance: string;
  /** Instance type it ran on. */
  instanceType?: string;
  /** Spot, on-demand or local, where the claimer said. */
  lifecycle?: Lifecycle;
  startedAt: string;
  endedAt?: string;
  outcome?: AttemptOutcome;
  exitCode?: number;
}

/** Attempts kept per task: enough for every charged attempt plus interruptions, bounded for the item size. */
export const MAX_ATTEMPT_HISTORY = 30;

/** Where a task's artifacts live; the same layout on every backend. */
export const keys = {
  bundle: (sha256: string) => `bundles/${sha256}.tar.gz`,
  install: (job: string) => `jobs/${job}/install.sh`,
  license: (job: string) => `jobs/${job}/secret/license`,
  taskPrefix: (job: string, task: number) => `jobs/${job}/tasks/${task}/`,
  taskOutput: (job: string, task: number, rel: string) => `jobs/${job}/tasks/${task}/files/${rel}`,
  taskLog: (job: string, task: number) => `jobs/${job}/tasks/${task}/log.txt`,
  /** The running attempt's output, rewritten while it runs (live-log.ts); one per task, the latest attempt's. */
  taskLiveLog: (job: string, task: number) => `jobs/${job}/tasks/${task}/live.log`,
  /** The task's checkpoint folder, packed (agent/src/checkpoint.ts); one per task, replaced by each save. */
  taskCheckpoint: (job: string, task: number) => `jobs/${job}/tasks/${task}/checkpoint.tar.gz`,
  instanceLog: (job: string, instance: string, name: string) => `jobs/${job}/instances/${instance}/${name}`,
} as const;

/**
 * Receives after which a message goes to the dead-letter queue. Generous on purpose: the status
 * store counts attempts and fails a task after its limit; a receive that finds the task's lease
 * held (a task running longer than SQS's 12-hour visibility cap) also counts here. The
 * dead-letter queue only catches messages that crash the agent before it can claim them.
 */
export function maxReceiveCountFor(maxAttempts: number): number {
  // With hideLeased's back-off a task held past 12 hours costs about two receives a day.
  return Math.max(20, maxAttempts * 5);
}
