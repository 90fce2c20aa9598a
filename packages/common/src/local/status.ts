/**
 * StatusStore on SQLite. Every operation is one BEGIN IMMEDIATE transaction: read the task (and
 * job), call the pure decide* function, write its record conditionally on the version read
 * (`WHERE version = ?`, belt-and-braces inside the transaction) and apply the counter delta to the
 * job row, so the job counters always equal a COUNT(*) of the tasks by state.
 *
 * A claim also records the worker as BUSY with its task (`detail: "task N"`, what `gq status`
 * reads the running tasks through) in the same transaction, as the DynamoDB store does.
 */
import type { Statement, Transaction } from 'better-sqlite3';
import type {
  ClaimResult,
  CompleteResult,
  HeartbeatResult,
  StatusStore,
  TaskOutcome,
} from '../ports.js';
import type { InstanceRecord, JobRecord, JobSpec, NewTask, TaskRecord } from '../job/model.js';
import { emptyCounts, TASK_STATES, countKey, type Counts, type TaskState } from '../job/states.js';
import {
  decideCancel,
  decideClaim,
  decideComplete,
  decideFailUnrun,
  decideHeartbeat,
  decideResubmit,
  decideTag,
  newTaskRecord,
  type Decision,
} from '../job/transitions.js';
import { GqError, JobNotFoundError, UserError } from '../errors.js';
import type { Db } from './db.js';
import { ConcurrentUpdateError } from './errors.js';
import { processStartTime } from './procs.js';

export interface LocalStatusOptions {
  /** Clock for leases and timestamps (tests). */
  clock?: () => number;
}

interface JobRow {
  name: string;
  spec: string;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  cancel_requested: number;
  updated_at: string;
}

interface TaskRow {
  job: string;
  task: number;
  instance_type: string;
  command: string;
  state: TaskState;
  version: number;
  record: string;
}


function taskFromRow(r: TaskRow): TaskRecord {
  const rest = JSON.parse(r.record) as Omit<TaskRecord, 'job' | 'task' | 'instanceType' | 'command' | 'state' | 'version'>;
  return {
    ...rest,
    tags: rest.tags ?? {},
    job: r.job,
    task: r.task,
    instanceType: r.instance_type,
    command: r.command,
    state: r.state,
    version: r.version,
  };
}

/** The TaskRecord fields that are not columns, as JSON. */
function recordJson(t: TaskRecord): string {
  const { job: _j, task: _t, instanceType: _i, command: _c, state: _s, version: _v, ...rest } = t;
  return JSON.stringify(rest);
}

function jobFromRow(r: JobRow): JobRecord {
  return {
    ...(JSON.parse(r.spec) as JobSpec),
    counts: { queued: r.queued, running: r.running, succeeded: r.succeeded, failed: r.failed, cancelled: r.cancelled },
    cancelRequested: r.cancel_requested !== 0,
    updatedAt: r.updated_at,
  };
}

type DeltaParams = Counts & { name: string; now: string };

function addCounts(into: Counts, delta: Partial<Counts>): void {
  for (const [k, v] of Object.entries(delta) as [keyof Counts, number][]) into[k] += v;
}

/** Straight COUNT(*) of a job's tasks by state, for checking the counters. */
export function countTasksByState(db: Db, job: string): Counts {
  const counts = emptyCounts();
  const rows = db.prepare('SELECT state, COUNT(*) AS n FROM tasks WHERE job = ? GROUP BY state').all(job) as {
    state: TaskState;
    n: number;
  }[];
  for (const r of rows) counts[countKey(r.state)] += r.n;
  return counts;
}

export class LocalStatusStore implements StatusStore {
  private readonly clock: () => number;
  private readonly s: {
    getJob: Statement<[string], JobRow>;
    listJobs: Statement<[], JobRow>;
    insertJob: Statement<[string, string, string, string]>;
    setCancel: Statement<[string, string]>;
    delta: Statement<[DeltaParams]>;
    deleteJob: Statement<[string]>;
    getTask: Statement<[string, number], TaskRow>;
    listTasks: Statement<[string], TaskRow>;
    taskPage: Statement<[string, number, number], TaskRow>;
    listLive: Statement<[string], TaskRow>;
    listFailed: Statement<[string], TaskRow>;
    insertTask: Statement<[string, number, string, string, string, number, string]>;
    writeTask: Statement<[string, number, string, string, number, number]>;
    deleteTasks: Statement<[string]>;
    putInstance: Statement<[string, string, string]>;
    getInstance: Statement<[string, string], { record: string }>;
    listInstances: Statement<[string], { record: string }>;
    deleteInstances: Statement<[string]>;
  };
  private readonly tx: {
    createJob: Transaction<(spec: JobSpec, tasks: readonly NewTask[]) => { created: number; existing: number }>;
    claim: Transaction<(job: string, task: number, instance: string, leaseMs: number) => ClaimResult>;
    heartbeat: Transaction<(job: string, task: number, instance: string, leaseMs: number) => HeartbeatResult>;
    complete: Transaction<(job: string, task: number, instance: string, outcome: TaskOutcome) => CompleteResult>;
    failUnrun: Transaction<(job: string, task: number, reason: string) => boolean>;
    setTag: Transaction<(job: string, task: number, key: string, value: string) => void>;
    cancel: Transaction<(job: string) => { cancelled: number; stopping: number }>;
    resubmit: Transaction<(job: string) => NewTask[]>;
    deleteJob: Transaction<(job: string) => void>;
  };

  constructor(
    private readonly db: Db,
    opts: LocalStatusOptions = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.s = {
      getJob: db.prepare('SELECT * FROM jobs WHERE name = ?'),
      listJobs: db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC'),
      insertJob: db.prepare('INSERT INTO jobs (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)'),
      setCancel: db.prepare('UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE name = ?'),
      delta: db.prepare(
        `UPDATE jobs SET queued = queued + @queued, running = running + @running, succeeded = succeeded + @succeeded,
           failed = failed + @failed, cancelled = cancelled + @cancelled, updated_at = @now WHERE name = @name`,
      ),
      deleteJob: db.prepare('DELETE FROM jobs WHERE name = ?'),
      getTask: db.prepare('SELECT * FROM tasks WHERE job = ? AND task = ?'),
      listTasks: db.prepare('SELECT * FROM tasks WHERE job = ? ORDER BY task'),
      taskPage: db.prepare('SELECT * FROM tasks WHERE job = ? AND task > ? ORDER BY task LIMIT ?'),
      listLive: db.prepare(`SELECT * FROM tasks WHERE job = ? AND state IN ('QUEUED', 'RUNNING') ORDER BY task`),
      listFailed: db.prepare(`SELECT * FROM tasks WHERE job = ? AND state = 'FAILED' ORDER BY task`),
      insertTask: db.prepare(
        `INSERT OR IGNORE INTO tasks (job, task, instance_type, command, state, version, record)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      writeTask: db.prepare(
        'UPDATE tasks SET state = ?, version = ?, record = ? WHERE job = ? AND task = ? AND version = ?',
      ),
      deleteTasks: db.prepare('DELETE FROM tasks WHERE job = ?'),
      putInstance: db.prepare('INSERT OR REPLACE INTO instances (job, instance, record) VALUES (?, ?, ?)'),
      getInstance: db.prepare('SELECT record FROM instances WHERE job = ? AND instance = ?'),
      listInstances: db.prepare('SELECT record FROM instances WHERE job = ? ORDER BY instance'),
      deleteInstances: db.prepare('DELETE FROM instances WHERE job = ?'),
    };

    this.tx = {
      createJob: db.transaction((spec: JobSpec, tasks: readonly NewTask[]) => {
        const now = this.clock();
        const existing = this.s.getJob.get(spec.name);
        if (existing) {
          const old = JSON.parse(existing.spec) as JobSpec;
          if (old.codeKey !== spec.codeKey || old.total !== spec.total) {
            throw new UserError(`job ${spec.name} already exists`, {
              hint: 'Pick another job name, or clean the old job first (`gq clean`).',
            });
          }
        } else {
          this.s.insertJob.run(spec.name, JSON.stringify(spec), spec.createdAt, new Date(now).toISOString());
        }
        let created = 0;
        for (const t of tasks) {
          const rec = newTaskRecord(spec.name, t, now);
          created += this.s.insertTask.run(spec.name, rec.task, rec.instanceType, rec.command, rec.state, rec.version, recordJson(rec))
            .changes;
        }
        if (created > 0) this.applyDelta(spec.name, { queued: created }, now);
        return { created, existing: tasks.length - created };
      }),

      claim: db.transaction((job: string, task: number, instance: string, leaseMs: number): ClaimResult => {
        const now = this.clock();
        const j = this.readJob(job);
        const t = this.readTask(job, task);
        if (!j) return { kind: 'missing' };
        const d = decideClaim(t, j, instance, now, leaseMs);
        this.apply(t, d, now);
        if (d.result.kind === 'claimed') {
          // The job handed back reflects this claim's counter change.
          addCounts(j.counts, d.delta);
          this.markBusy(d.result.task, instance, now);
        }
        return d.result;
      }),

      heartbeat: db.transaction((job: string, task: number, instance: string, leaseMs: number) => {
        const now = this.clock();
        const t = this.readTask(job, task);
        const d = decideHeartbeat(t, this.readJob(job), instance, now, leaseMs);
        this.apply(t, d, now);
        return d.result;
      }),

      complete: db.transaction((job: string, task: number, instance: string, outcome: TaskOutcome): CompleteResult => {
        const now = this.clock();
        const j = this.readJob(job);
        const t = this.readTask(job, task);
        if (!j) return { kind: 'lost' };
        const d = decideComplete(t, j, instance, outcome, now);
        this.apply(t, d, now);
        return d.result;
      }),

      failUnrun: db.transaction((job: string, task: number, reason: string): boolean => {
        const now = this.clock();
        const t = this.readTask(job, task);
        if (!t) return false;
        const d = decideFailUnrun(t, reason, now);
        this.apply(t, d, now);
        return d.result;
      }),

      setTag: db.transaction((job: string, task: number, key: string, value: string) => {
        const now = this.clock();
        const t = this.readTask(job, task);
        if (!t) throw new UserError(`Job "${job}" has no task ${task}.`);
        this.apply(t, { write: decideTag(t, key, value, now), delta: {}, result: undefined }, now);
      }),

      cancel: db.transaction((job: string) => {
        const now = this.clock();
        if (!this.readJob(job)) throw new JobNotFoundError(job);
        this.s.setCancel.run(new Date(now).toISOString(), job);
        let cancelled = 0;
        let stopping = 0;
        const total = emptyCounts();
        for (const row of this.s.listLive.all(job)) {
          const t = taskFromRow(row);
          const d = decideCancel(t, now);
          this.write(t, d.write);
          addCounts(total, d.delta);
          if (d.result === 'cancelled') cancelled++;
          else if (d.result === 'stopping') stopping++;
        }
        this.applyDelta(job, total, now);
        return { cancelled, stopping };
      }),

      resubmit: db.transaction((job: string) => {
        const now = this.clock();
        if (!this.readJob(job)) throw new JobNotFoundError(job);
        const out: NewTask[] = [];
        const total = emptyCounts();
        for (const row of this.s.listFailed.all(job)) {
          const t = taskFromRow(row);
          const d = decideResubmit(t, now);
          this.write(t, d.write);
          addCounts(total, d.delta);
          if (d.result) out.push({ task: t.task, instanceType: t.instanceType, command: t.command });
        }
        this.applyDelta(job, total, now);
        return out;
      }),

      deleteJob: db.transaction((job: string) => {
        this.s.deleteTasks.run(job);
        this.s.deleteInstances.run(job);
        this.s.deleteJob.run(job);
      }),
    };
  }

  private readJob(job: string): JobRecord | undefined {
    const r = this.s.getJob.get(job);
    return r ? jobFromRow(r) : undefined;
  }

  private readTask(job: string, task: number): TaskRecord | undefined {
    const r = this.s.getTask.get(job, task);
    return r ? taskFromRow(r) : undefined;
  }

  /** The worker's record says BUSY with this task; its other fields stay (a record is made if it has none). */
  private markBusy(task: TaskRecord, instance: string, now: number): void {
    const row = this.s.getInstance.get(task.job, instance);
    const was: InstanceRecord = row
      ? (JSON.parse(row.record) as InstanceRecord)
      : { job: task.job, instance, instanceType: task.instanceType, state: 'BUSY', heartbeatAt: '' };
    const rec: InstanceRecord = { ...was, state: 'BUSY', task: task.task, detail: `task ${task.task}`, heartbeatAt: new Date(now).toISOString() };
    this.s.putInstance.run(task.job, instance, JSON.stringify(rec));
  }

  /** Write a decision: the record conditionally on the version read, and the counter delta. */
  private apply(before: TaskRecord | undefined, d: Decision<unknown>, now: number): void {
    if (!before) {
      if (d.write) throw new GqError(`internal: a decision wrote task ${d.write.task} that was not read`);
      return;
    }
    this.write(before, d.write);
    this.applyDelta(before.job, d.delta, now);
  }

  /** Write `w` (if any) over `before`, conditionally on the version read. */
  private write(before: TaskRecord, w: TaskRecord | undefined): void {
    if (!w) return;
    const changes = this.s.writeTask.run(w.state, w.version, recordJson(w), before.job, before.task, before.version).changes;
    if (changes !== 1) {
      throw new ConcurrentUpdateError(`task ${before.job}/${before.task} changed under us (version ${before.version})`);
    }
  }

  private applyDelta(job: string, delta: Partial<Counts>, now: number): void {
    let any = false;
    for (const k of Object.keys(delta) as (keyof Counts)[]) if (delta[k]) any = true;
    if (!any) return;
    this.s.delta.run({
      queued: delta.queued ?? 0,
      running: delta.running ?? 0,
      succeeded: delta.succeeded ?? 0,
      failed: delta.failed ?? 0,
      cancelled: delta.cancelled ?? 0,
      name: job,
      now: new Date(now).toISOString(),
    });
  }

  async createJob(spec: JobSpec, tasks: readonly NewTask[]): Promise<{ created: number; existing: number }> {
    return this.tx.createJob.immediate(spec, tasks);
  }

  async getJob(name: string): Promise<JobRecord | undefined> {
    return this.readJob(name);
  }

  async listJobs(): Promise<JobRecord[]> {
    return this.s.listJobs.all().map(jobFromRow);
  }

  async getTask(job: string, task: number): Promise<TaskRecord | undefined> {
    return this.readTask(job, task);
  }

  async listTasks(job: string, opts: { states?: readonly TaskState[] } = {}): Promise<TaskRecord[]> {
    if (opts.states) {
      for (const s of opts.states) {
        if (!TASK_STATES.includes(s)) throw new UserError(`Unknown task state "${s}".`);
      }
      if (opts.states.length === 0) return [];
      const marks = opts.states.map(() => '?').join(', ');
      const rows = this.db
        .prepare(`SELECT * FROM tasks WHERE job = ? AND state IN (${marks}) ORDER BY task`)
        .all(job, ...opts.states) as TaskRow[];
      return rows.map(taskFromRow);
    }
    return this.s.listTasks.all(job).map(taskFromRow);
  }

  async *taskPages(job: string, pageSize = 1000): AsyncIterable<TaskRecord[]> {
    const size = Math.max(1, Math.floor(pageSize));
    for (let after = Number.MIN_SAFE_INTEGER; ; ) {
      const rows = this.s.taskPage.all(job, after, size);
      if (rows.length === 0) return;
      after = rows[rows.length - 1]!.task;
      yield rows.map(taskFromRow);
    }
  }

  async claim(job: string, task: number, instance: string, leaseMs: number): Promise<ClaimResult> {
    return this.tx.claim.immediate(job, task, instance, leaseMs);
  }

  async heartbeat(job: string, task: number, instance: string, leaseMs: number): Promise<HeartbeatResult> {
    return this.tx.heartbeat.immediate(job, task, instance, leaseMs);
  }

  async complete(job: string, task: number, instance: string, outcome: TaskOutcome): Promise<CompleteResult> {
    return this.tx.complete.immediate(job, task, instance, outcome);
  }

  async failUnrun(job: string, task: number, reason: string): Promise<boolean> {
    return this.tx.failUnrun.immediate(job, task, reason);
  }

  async setTag(job: string, task: number, key: string, value: string): Promise<void> {
    this.tx.setTag.immediate(job, task, key, value);
  }

  async cancel(job: string): Promise<{ cancelled: number; stopping: number }> {
    return this.tx.cancel.immediate(job);
  }

  async resubmitFailed(job: string): Promise<NewTask[]> {
    return this.tx.resubmit.immediate(job);
  }

  async putInstance(rec: InstanceRecord): Promise<void> {
    // A worker recording itself: with its start time, its pid names it for good (reaper.ts).
    const own = rec.pid === process.pid && rec.pidStart === undefined ? processStartTime(process.pid) : undefined;
    const full = own === undefined ? rec : { ...rec, pidStart: own };
    this.s.putInstance.run(rec.job, rec.instance, JSON.stringify(full));
  }

  async listInstances(job: string): Promise<InstanceRecord[]> {
    return this.s.listInstances.all(job).map((r) => JSON.parse(r.record) as InstanceRecord);
  }

  async deleteJob(job: string): Promise<void> {
    this.tx.deleteJob.immediate(job);
  }

  /** COUNT(*) of the job's tasks by state (what the counters must always equal). */
  countTasksByState(job: string): Counts {
    return countTasksByState(this.db, job);
  }
}
