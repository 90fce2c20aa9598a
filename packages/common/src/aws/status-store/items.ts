/**
 * The item layout of the status table (partition key `pk`, sort key `sk`, both strings), and the
 * mapping between its items and gq's records:
 *
 *   pk=JOB#<job>  sk=JOB                 the job: `spec` (map), counterShards, cancelRequested,
 *                                        createdAt, updatedAt (and five counters, always 0 for a
 *                                        job with shards: kept so that older jobs still read right)
 *   pk=JOB#<job>  sk=JOB#COUNT#<nnn>     counter shard n of counterShards: the five counters
 *   pk=JOB#<job>  sk=TASK#<0000042>      one task: the TaskRecord's fields as attributes, but
 *                                        its command (an item written by an older gq keeps it)
 *   pk=JOB#<job>  sk=CMD#<0000042>       the task's command (up to 128 KB), written once
 *   pk=JOB#<job>  sk=INST#<instance>     one worker: the InstanceRecord's fields
 *   pk=JOBS       sk=<createdAt>#<job>   index of jobs (listJobs reads it newest first, no Scan)
 *
 * The command in an item of its own: DynamoDB bills a write on the whole item (1 WCU per KB, twice
 * in a transaction), and a task item is written at every claim, heartbeat and completion; with
 * the command in it, a heartbeat of a task with a 128 KB command cost 128 WCU. Without it a task
 * item is under 1 KB (plus its tags and stderr tail): a heartbeat is 1 WCU. The command is read
 * with the task in the same BatchGetItem (claim, getTask), and written with the task item in the
 * same transaction, so that every task anyone can see has its command.
 */
import type { InstanceRecord, JobRecord, JobSpec, TaskRecord } from '../../job/model.js';
import { COUNT_KEYS, emptyCounts } from '../../job/states.js';

/** Counter attributes `moved:<instance type>` (job/on-demand.ts movedCounter), summed over the shards. */
const MOVED_PREFIX = 'moved:';

export type Item = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Keys

export const JOBS_PK = 'JOBS';
export const JOB_SK = 'JOB';
export const jobPk = (job: string): string => `JOB#${job}`;
export const taskSk = (task: number): string => `TASK#${String(task).padStart(7, '0')}`;
export const instanceSk = (instance: string): string => `INST#${instance}`;
export const commandSk = (task: number): string => `CMD#${String(task).padStart(7, '0')}`;
export const jobsIndexSk = (createdAt: string, job: string): string => `${createdAt}#${job}`;
/** Counter shard `n` of a job; sorts right after `JOB`, so one Query reads the job and its shards. */
export const counterSk = (n: number): string => `${JOB_SK}#COUNT#${String(n).padStart(3, '0')}`;
export const COUNTER_PREFIX = `${JOB_SK}#COUNT#`;
/** Counter shards of a new job (default). 64 shards + the job item + its index entry fit one transaction. */
export const DEFAULT_COUNTER_SHARDS = 64;
export const MAX_COUNTER_SHARDS = 98;
export const TASK_PREFIX = 'TASK#';
export const CMD_PREFIX = 'CMD#';
export const INST_PREFIX = 'INST#';

export { COUNT_KEYS };

/**
 * The sparse global secondary index of FAILED tasks: a task item has FAILED_PK (its job's pk) and
 * FAILED_SK (its task number) only while it is FAILED (taskUpdate sets and removes them with the
 * state), so the index holds a job's failed tasks alone, in task order, and `gq status` reads its
 * first failures without reading the tasks around them. Projected whole (a few items: failures).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html
 */
export const FAILED_INDEX = 'failed';
export const FAILED_PK = 'fpk';
export const FAILED_SK = 'fsk';
/** Attributes a decided write never touches: keys, identity, the command (its own item), and tags and their times (owned by setTag). */
export const FROZEN: ReadonlySet<string> = new Set(['pk', 'sk', 'kind', 'job', 'task', 'command', 'tags', 'tagTimes', FAILED_PK, FAILED_SK]);

// ---------------------------------------------------------------------------------------------
// Records → items

/** The task item: the record without its command (see the module comment), with the map setTag writes the tags' times into. */
export function taskItem(rec: TaskRecord): Item {
  const { command: _command, ...rest } = rec;
  return { pk: jobPk(rec.job), sk: taskSk(rec.task), kind: 'task', ...rest, tagTimes: rec.tagTimes ?? {}, ...(rec.state === 'FAILED' ? { [FAILED_PK]: jobPk(rec.job), [FAILED_SK]: rec.task } : {}) };
}

export function commandItem(job: string, task: number, command: string): Item {
  return { pk: jobPk(job), sk: commandSk(task), kind: 'command', job, task, command };
}

/** The job item of a new job whose counters live in `counterShards` shards. */
export function jobItem(spec: JobSpec, counterShards: number, updatedAt: string): Item {
  return {
    pk: jobPk(spec.name),
    sk: JOB_SK,
    kind: 'job',
    job: spec.name,
    spec,
    ...emptyCounts(),
    counterShards,
    cancelRequested: false,
    createdAt: spec.createdAt,
    updatedAt,
  };
}

/** Counter shard `n` of a new job, all counts 0. */
export function counterItem(job: string, n: number, updatedAt: string): Item {
  return { pk: jobPk(job), sk: counterSk(n), kind: 'counter', job, ...emptyCounts(), updatedAt };
}

/** The job's entry in the index of jobs. */
export function jobsIndexItem(spec: JobSpec): Item {
  return { pk: JOBS_PK, sk: jobsIndexSk(spec.createdAt, spec.name), kind: 'jobs-index', job: spec.name, createdAt: spec.createdAt };
}

export function instanceItem(rec: InstanceRecord): Item {
  return { pk: jobPk(rec.job), sk: instanceSk(rec.instance), kind: 'instance', ...rec };
}

// ---------------------------------------------------------------------------------------------
// Items → records

/** The record from its task item and its command item's command (an older item has it inline). */
export function toTask(item: Item | undefined, command?: unknown): TaskRecord | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, kind: _kind, [FAILED_PK]: _fpk, [FAILED_SK]: _fsk, ...rest } = item;
  const t = rest as unknown as TaskRecord;
  return { ...t, command: String(t.command ?? command ?? ''), tags: (t.tags as Record<string, string> | undefined) ?? {} };
}

/** The job from its item and its counter shards (the counts are their sum; `shards` may be empty). */
export function toJob(item: Item | undefined, shards: readonly Item[] = []): JobRecord | undefined {
  if (!item) return undefined;
  const counts = emptyCounts();
  let updatedAt = String(item.updatedAt ?? (item.spec as JobSpec).createdAt);
  const moved: Record<string, number> = {};
  for (const it of [item, ...shards]) {
    for (const k of COUNT_KEYS) counts[k] += Number(it[k] ?? 0);
    for (const [k, v] of Object.entries(it)) {
      if (!k.startsWith(MOVED_PREFIX)) continue;
      const type = k.slice(MOVED_PREFIX.length);
      moved[type] = (moved[type] ?? 0) + Number(v ?? 0);
    }
    if (typeof it.updatedAt === 'string' && it.updatedAt > updatedAt) updatedAt = it.updatedAt;
  }
  return { ...(item.spec as JobSpec), counts, cancelRequested: Boolean(item.cancelRequested), updatedAt, ...(Object.keys(moved).length ? { movedToOnDemand: moved } : {}) };
}

/** The job from the items of a `begins_with(sk, "JOB")` Query. */
export function toJobFromItems(items: readonly Item[]): JobRecord | undefined {
  return toJob(
    items.find((i) => i.sk === JOB_SK),
    items.filter((i) => String(i.sk).startsWith(COUNTER_PREFIX)),
  );
}

export function toInstance(item: Item): InstanceRecord {
  const { pk: _pk, sk: _sk, kind: _kind, ...rest } = item;
  return rest as unknown as InstanceRecord;
}

/** Counter shards of a job from its item (null: a job of an older gq, counters on the job item). */
export function shardsOf(item: Item): number | null {
  return typeof item.counterShards === 'number' && item.counterShards > 0 ? item.counterShards : null;
}

/** Rough DynamoDB size of an item (for the 4 MB transaction limit). */
export function approxSize(item: Item): number {
  return Buffer.byteLength(JSON.stringify(item)) + 100;
}
