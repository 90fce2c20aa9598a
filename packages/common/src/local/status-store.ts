/**
 * StatusStore on SQLite. Every operation is one BEGIN IMMEDIATE transaction: read the task (and
 * job), call the pure decide* function, write its record conditionally on the version read
 * (`WHERE version = ?`, belt-and-braces inside the transaction) and apply the counter delta to the
 * job row, so the job counters always equal a COUNT(*) of the tasks by state.
 *
 * A claim also records the worker as BUSY with its task (`detail: "task N"`, what `gq status`
 * reads the running tasks through) in the same transaction, as the DynamoDB store does; a tag
 * changes the task's tags only, as there. Rows and statements: status-rows.ts.
 */
import type { Transaction } from 'better-sqlite3';
import type {
  ClaimOptions,
  ClaimResult,
  CompleteResult,
  HeartbeatResult,
  ListTasksOptions,
  StatusStore,
  TaskOutcome,
} from '../ports.js';
import { busyDetail, type CapStop, type InstanceRecord, type JobRecord, type JobSpec, type NewTask, type TaskRecord } from '../job/model.js';
import { emptyCounts, type CounterDelta, type Counts, type TaskState } from '../job/states.js';
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
import { checkListLimit, checkNewTasks, checkSameJob, checkTaskStates } from '../job/store-rules.js';
import { GqError } from '../errors.js';
import { JobNotFoundError, TaskNotFoundError } from '../port-errors.js';
import { withWriteLock, type Db } from './db.js';
import { processStartTime } from './procs.js';
import {
  addCounts,
  countTasksByState,
  jobFromRow,
  prepareStatusStatements,
  recordJson,
  taskFromRow,
  type StatusStatements,
  type TaskRow,
} from './status-store-rows.js';

export { countTasksByState } from './status-store-rows.js';

export interface LocalStatusOptions {
  /** Clock for leases and timestamps (tests). */
  clock?: () => number;
  /**
   * Hold the worker records that `putInstance` writes (the agent's side) for up to this many ms:
   * the next claim writes the held one in its own transaction (a worker's record after each task
   * is then one commit fewer: the claim that follows rewrites it anyway), and `listInstances`,
   * `flush` and a timer write it otherwise. A held record that never goes out (the process died)
   * leaves the worker's previous record, as if it had died a moment earlier; its pid stays the
   * one recorded, so the reaper's liveness checks see the same. Default 0: written at once.
   */
  holdInstanceMs?: number;
}

export class LocalStatusStore implements StatusStore {
  private readonly clock: () => number;
  private readonly s: StatusStatements;
  /** This process's start time (procs.ts): read once, it never changes. */
  private ownStart: string | undefined;
  private readonly holdInstanceMs: number;
  /** Worker records held back (`holdInstanceMs`), by job and instance, and the timer that writes them. */
  private readonly heldInstances = new Map<string, InstanceRecord>();
  private heldTimer: NodeJS.Timeout | undefined;
  private readonly tx: {
    createJob: Transaction<(spec: JobSpec, tasks: readonly NewTask[]) => { created: number; existing: number }>;
    claim: Transaction<(job: string, task: number, instance: string, leaseMs: number, opts?: ClaimOptions) => ClaimResult>;
    heartbeat: Transaction<(job: string, task: number, instance: string, leaseMs: number) => HeartbeatResult>;
    complete: Transaction<(job: string, task: number, instance: string, outcome: TaskOutcome) => CompleteResult>;
    failUnrun: Transaction<(job: string, task: number, reason: string) => boolean>;
    setTag: Transaction<(job: string, task: number, key: string, value: string) => void>;
    cancel: Transaction<(job: string) => { cancelled: number; stopping: number }>;
    resubmit: Transaction<(job: string) => NewTask[]>;
    deleteJob: Transaction<(job: string) => void>;
    writeHeld: Transaction<() => void>;
  };

  constructor(
    private readonly db: Db,
    opts: LocalStatusOptions = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.holdInstanceMs = Math.max(0, opts.holdInstanceMs ?? 0);
    this.s = prepareStatusStatements(db);

    this.tx = {
      createJob: db.transaction((spec: JobSpec, tasks: readonly NewTask[]) => {
        checkNewTasks(spec.name, tasks);
        const now = this.clock();
        const existing = this.s.getJob.get(spec.name);
        if (existing) {
          checkSameJob(JSON.parse(existing.spec) as JobSpec, spec);
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

      claim: db.transaction((job: string, task: number, instance: string, leaseMs: number, opts?: ClaimOptions): ClaimResult => {
        const now = this.clock();
        const j = this.readJob(job);
        const t = this.readTask(job, task);
        if (!j) return { kind: 'missing' };
        const d = decideClaim(t, j, instance, now, leaseMs, opts);
        this.apply(t, d, now);
        if (d.result.kind === 'claimed') {
          // The job handed back reflects this claim's counter change (ports.ts, ClaimResult).
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

      // The tags only, as on DynamoDB: no version bump, so a tag never makes a heartbeat or a
      // complete of the task lose its version check (see aws/status-store/, "Tags").
      setTag: db.transaction((job: string, task: number, key: string, value: string) => {
        const t = this.readTask(job, task);
        if (!t) throw new TaskNotFoundError(job, task);
        const { tags, tagTimes } = decideTag(t, key, value, this.clock());
        this.s.writeTags.run(recordJson({ ...t, tags, tagTimes }), job, task);
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

      writeHeld: db.transaction(() => this.writeHeldInstances()),

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
    this.writeHeldInstances();
    const row = this.s.getInstance.get(task.job, instance);
    const was: InstanceRecord = row
      ? (JSON.parse(row.record) as InstanceRecord)
      : { job: task.job, instance, instanceType: task.instanceType, state: 'BUSY', heartbeatAt: '' };
    // Several slots: `task` stays the first, `tasks` gains this one (as the DynamoDB store does).
    const rec: InstanceRecord = {
      ...was,
      state: 'BUSY',
      task: was.task ?? task.task,
      tasks: [...(was.tasks ?? []), task.task],
      detail: busyDetail(task.task),
      heartbeatAt: new Date(now).toISOString(),
    };
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
    // Cannot happen inside one write transaction: a bug if it does.
    if (changes !== 1) throw new GqError(`internal: task ${before.job}/${before.task} changed under us (version ${before.version})`);
  }

  private applyDelta(job: string, delta: CounterDelta, now: number): void {
    if (!(delta.queued || delta.running || delta.succeeded || delta.failed || delta.cancelled)) return;
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
    return withWriteLock(this.db, () => this.tx.createJob(spec, tasks));
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

  async listTasks(job: string, opts: ListTasksOptions = {}): Promise<TaskRecord[]> {
    checkListLimit(opts.limit);
    const limit = opts.limit ?? -1; // SQLite: a negative LIMIT is none
    if (opts.states) {
      checkTaskStates(opts.states);
      if (opts.states.length === 0) return [];
      const marks = opts.states.map(() => '?').join(', ');
      const rows = this.db.prepare(`SELECT * FROM tasks WHERE job = ? AND state IN (${marks}) ORDER BY task LIMIT ?`).all(job, ...opts.states, limit) as TaskRow[];
      return rows.map(taskFromRow);
    }
    return (opts.limit === undefined ? this.s.listTasks.all(job) : this.s.taskPage.all(job, Number.MIN_SAFE_INTEGER, limit)).map(taskFromRow);
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

  async claim(job: string, task: number, instance: string, leaseMs: number, opts?: ClaimOptions): Promise<ClaimResult> {
    return withWriteLock(this.db, () => this.tx.claim(job, task, instance, leaseMs, opts));
  }

  async heartbeat(job: string, task: number, instance: string, leaseMs: number): Promise<HeartbeatResult> {
    return withWriteLock(this.db, () => this.tx.heartbeat(job, task, instance, leaseMs));
  }

  async complete(job: string, task: number, instance: string, outcome: TaskOutcome): Promise<CompleteResult> {
    return withWriteLock(this.db, () => this.tx.complete(job, task, instance, outcome));
  }

  async failUnrun(job: string, task: number, reason: string): Promise<boolean> {
    return withWriteLock(this.db, () => this.tx.failUnrun(job, task, reason));
  }

  async setTag(job: string, task: number, key: string, value: string): Promise<void> {
    withWriteLock(this.db, () => this.tx.setTag(job, task, key, value));
  }

  async cancel(job: string): Promise<{ cancelled: number; stopping: number }> {
    return withWriteLock(this.db, () => this.tx.cancel(job));
  }

  async setMaxCost(job: string, maxCost: number): Promise<void> {
    if (this.s.setMaxCost.run(maxCost, new Date(this.clock()).toISOString(), job).changes === 0) throw new JobNotFoundError(job);
  }

  async markCapReached(job: string, stop: CapStop): Promise<boolean> {
    if (this.s.markCapReached.run(JSON.stringify(stop), new Date(this.clock()).toISOString(), job, stop.maxCost).changes > 0) return true;
    if (!this.s.getJob.get(job)) throw new JobNotFoundError(job);
    return false;
  }

  async resubmitFailed(job: string): Promise<NewTask[]> {
    return withWriteLock(this.db, () => this.tx.resubmit(job));
  }

  async putInstance(rec: InstanceRecord): Promise<void> {
    // A worker recording itself: with its start time, its pid names it for good (reaper.ts).
    const own = rec.pid === process.pid && rec.pidStart === undefined ? (this.ownStart ??= processStartTime(process.pid)) : undefined;
    const full = own === undefined ? rec : { ...rec, pidStart: own };
    if (this.holdInstanceMs <= 0) {
      this.s.putInstance.run(rec.job, rec.instance, JSON.stringify(full));
      return;
    }
    this.heldInstances.set(`${rec.job}\0${rec.instance}`, full);
    this.heldTimer ??= setTimeout(() => {
      try {
        this.flush();
      } catch {
        /* the next claim, listInstances or flush writes it */
      }
    }, this.holdInstanceMs).unref();
  }

  /** Write the worker records held back (`holdInstanceMs`) in a transaction of their own. */
  flush(): void {
    if (this.heldInstances.size > 0 && this.db.open) withWriteLock(this.db, () => this.tx.writeHeld());
  }

  /** Write the held worker records inside the caller's transaction. */
  private writeHeldInstances(): void {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    for (const r of this.heldInstances.values()) this.s.putInstance.run(r.job, r.instance, JSON.stringify(r));
    this.heldInstances.clear();
  }

  async listInstances(job: string): Promise<InstanceRecord[]> {
    this.flush();
    return this.s.listInstances.all(job).map((r) => JSON.parse(r.record) as InstanceRecord);
  }

  async deleteJob(job: string): Promise<void> {
    withWriteLock(this.db, () => this.tx.deleteJob(job));
  }

  /** COUNT(*) of the job's tasks by state (what the counters must always equal). */
  countTasksByState(job: string): Counts {
    return countTasksByState(this.db, job);
  }
}
