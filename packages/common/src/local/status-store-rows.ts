/**
 * The SQLite side of the local StatusStore: the rows of the jobs and tasks tables, their mapping
 * to records, and the statements the store runs (prepared once per store).
 */
import type { Statement } from 'better-sqlite3';
import type { JobRecord, JobSpec, TaskRecord } from '../job/model.js';
import { COUNT_KEYS, countKey, emptyCounts, type CounterDelta, type Counts, type TaskState } from '../job/states.js';
import type { Db } from './db.js';

export interface JobRow {
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

export interface TaskRow {
  job: string;
  task: number;
  instance_type: string;
  command: string;
  state: TaskState;
  version: number;
  record: string;
}

export function taskFromRow(r: TaskRow): TaskRecord {
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
export function recordJson(t: TaskRecord): string {
  const { job: _j, task: _t, instanceType: _i, command: _c, state: _s, version: _v, ...rest } = t;
  return JSON.stringify(rest);
}

/**
 * The last spec text parsed and its value: every claim and complete reads the job, whose spec
 * (fixed at submit, but for `setMaxCost`) is the same text each time. A record gets a shallow
 * copy; the nested objects it shares with the cache (instanceTypes, env, outputs) are frozen, so
 * that a caller changing one fails loudly instead of changing every later record.
 */
let lastSpec: { text: string; spec: JobSpec } | undefined;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function parseSpec(text: string): JobSpec {
  if (lastSpec?.text !== text) lastSpec = { text, spec: deepFreeze(JSON.parse(text) as JobSpec) };
  return lastSpec.spec;
}

export function jobFromRow(r: JobRow): JobRecord {
  return {
    ...parseSpec(r.spec),
    counts: { queued: r.queued, running: r.running, succeeded: r.succeeded, failed: r.failed, cancelled: r.cancelled },
    cancelRequested: r.cancel_requested !== 0,
    updatedAt: r.updated_at,
  };
}

export type DeltaParams = Counts & { name: string; now: string };

/** Add the task counts of `delta` into `into` (its other counters are not the local store's: a local job has no Spot). */
export function addCounts(into: Counts, delta: CounterDelta): void {
  for (const k of COUNT_KEYS) into[k] += delta[k] ?? 0;
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

export interface StatusStatements {
  getJob: Statement<[string], JobRow>;
  listJobs: Statement<[], JobRow>;
  insertJob: Statement<[string, string, string, string]>;
  setCancel: Statement<[string, string]>;
  setMaxCost: Statement<[number, string, string]>;
  markCapReached: Statement<[string, string, string, number]>;
  delta: Statement<[DeltaParams]>;
  deleteJob: Statement<[string]>;
  getTask: Statement<[string, number], TaskRow>;
  listTasks: Statement<[string], TaskRow>;
  taskPage: Statement<[string, number, number], TaskRow>;
  listLive: Statement<[string], TaskRow>;
  listFailed: Statement<[string], TaskRow>;
  insertTask: Statement<[string, number, string, string, string, number, string]>;
  writeTask: Statement<[string, number, string, string, number, number]>;
  writeTags: Statement<[string, string, number]>;
  deleteTasks: Statement<[string]>;
  putInstance: Statement<[string, string, string]>;
  getInstance: Statement<[string, string], { record: string }>;
  listInstances: Statement<[string], { record: string }>;
  deleteInstances: Statement<[string]>;
}

export function prepareStatusStatements(db: Db): StatusStatements {
  return {
    getJob: db.prepare('SELECT * FROM jobs WHERE name = ?'),
    listJobs: db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC'),
    insertJob: db.prepare('INSERT INTO jobs (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)'),
    setCancel: db.prepare('UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE name = ?'),
    setMaxCost: db.prepare("UPDATE jobs SET spec = json_remove(json_set(spec, '$.maxCost', ?), '$.capStop'), updated_at = ? WHERE name = ?"),
    markCapReached: db.prepare(
      "UPDATE jobs SET spec = json_set(spec, '$.capStop', json(?)), updated_at = ? WHERE name = ? AND json_extract(spec, '$.capStop') IS NULL AND json_extract(spec, '$.maxCost') = ?",
    ),
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
    // A tag changes the tags only: no version, no other field (as on DynamoDB, see setTag).
    writeTags: db.prepare('UPDATE tasks SET record = ? WHERE job = ? AND task = ?'),
    deleteTasks: db.prepare('DELETE FROM tasks WHERE job = ?'),
    putInstance: db.prepare('INSERT OR REPLACE INTO instances (job, instance, record) VALUES (?, ?, ?)'),
    getInstance: db.prepare('SELECT record FROM instances WHERE job = ? AND instance = ?'),
    listInstances: db.prepare('SELECT record FROM instances WHERE job = ? ORDER BY instance'),
    deleteInstances: db.prepare('DELETE FROM instances WHERE job = ?'),
  };
}
