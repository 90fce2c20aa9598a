/**
 * StatusStore on one DynamoDB table (partition key `pk`, sort key `sk`, both strings).
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
 * Every task change follows the pure decide* functions of job/transitions.ts: read the task (and
 * the job), decide, then write only the attributes that changed, conditional on the version read,
 * with the counter delta applied to one counter shard in the same TransactWriteItems. A lost race
 * (condition failed) re-reads and decides again; a transaction conflict or a throttled write is
 * tried again after the `contention` backoff (backoff.ts), with no bound on the count: a worker
 * never gives up because another won a race. So the counters always equal a count of the task
 * items by state.
 *
 * Counter shards: DynamoDB cancels a transaction that overlaps another on one item
 * (TransactionConflict) and throttles an item written faster than its partition allows (1,000
 * WCU/s, a transactional write costing 2 WCU per KB), so one counter item for a job would cap the
 * job at a few hundred transitions a second and make every transition race every other. Each
 * transition adds its delta to a shard chosen at random (another one on each retry), and a job's
 * counts are the sum of its shards: `getJob` is one Query (`begins_with(sk, "JOB")`: the job
 * item and its shards, a few KB), whatever the number of tasks. The shards are created with the
 * job (one transaction), so an update conditional on the shard's existence also checks that the
 * job was not deleted. A job item without `counterShards` (written by an older gq) keeps its
 * counters on the job item, as before.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-sharding.html
 *
 * The records a store wrote: claim, heartbeat and complete of one task follow each other in the
 * same worker, so each store keeps the last task record it wrote while it holds the task's lease
 * (and the job record its claim read), and decides the next heartbeat or complete from them
 * without reading. Nothing is lost by it: a decision from a kept record is only acted on through
 * its write, conditional on the kept version, so it stands only if the item was still exactly
 * that record (a version never comes back, and decided writes are the only writers of everything
 * but `tags`); a failed condition, a decision with nothing to write, or any error drops the kept
 * record and reads again. The kept job record can only be stale in `cancelRequested` (its spec
 * never changes; the counters are not used): cancel sets the job's flag first and then marks every
 * running task (`cancelRequested`, a new version), so a kept task record of a cancelled job fails
 * its condition at the latest once cancel has passed, and the fresh read sees the cancel.
 * Claim always reads (the task may have been anyone's since), task and job in one BatchGetItem.
 *
 * A claim also records the worker as BUSY with its task (`detail: "task N"`, what `gq status`
 * reads the running tasks through): one more Update, of the instance item, in the claim's own
 * TransactWriteItems, so the worker makes no call of its own for it.
 *
 * The command in an item of its own: DynamoDB bills a write on the whole item (1 WCU per KB, twice
 * in a transaction), and a task item is written at every claim, heartbeat and completion; with
 * the command in it, a heartbeat of a task with a 128 KB command cost 128 WCU. Without it a task
 * item is under 1 KB (plus its tags and stderr tail): a heartbeat is 1 WCU. The command is read
 * with the task in the same BatchGetItem (claim, getTask), and written with the task item in the
 * same transaction, so that every task anyone can see has its command.
 *
 * Tags: setTag updates only `tags.<key>` (condition: the task exists) and leaves `version` alone;
 * the decided writes never write `tags` (they update changed attributes only, never a whole-item
 * Put). Neither can undo the other: a tag set while a heartbeat or complete is in flight is kept,
 * and the tag does not make that heartbeat or complete lose its version race.
 */
import {
  ConditionalCheckFailedException,
  TransactionCanceledException,
  type CancellationReason,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { BACKOFF, policyDelay } from '../backoff.js';
import { GqError, JobNotFoundError, UserError } from '../errors.js';
import type { InstanceRecord, JobRecord, JobSpec, NewTask, TaskRecord } from '../job/model.js';
import { countKey, emptyCounts, TASK_STATES, type Counts, type CountKey, type TaskState } from '../job/states.js';
import {
  decideCancel,
  decideClaim,
  decideComplete,
  decideFailUnrun,
  decideHeartbeat,
  decideResubmit,
  MAX_TASK_TAGS,
  newTaskRecord,
  tooManyTagsError,
  type Decision,
} from '../job/transitions.js';
import type { ClaimResult, CompleteResult, HeartbeatResult, StatusStore, TaskOutcome } from '../ports.js';

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
const COUNTER_PREFIX = `${JOB_SK}#COUNT#`;
/** Counter shards of a new job (default). 64 shards + the job item + its index entry fit one transaction. */
export const DEFAULT_COUNTER_SHARDS = 64;
export const MAX_COUNTER_SHARDS = 98;
const TASK_PREFIX = 'TASK#';
const CMD_PREFIX = 'CMD#';
const INST_PREFIX = 'INST#';

const COUNT_KEYS: readonly CountKey[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
/** Attributes a decided write never touches: keys, identity, the command (its own item), and tags (owned by setTag). */
const FROZEN = new Set(['pk', 'sk', 'kind', 'job', 'task', 'command', 'tags']);

type Item = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Errors as typed outcomes

/**
 * How a conditional write ended: `condition` (the item is not what was read), `conflict` (another
 * transaction was in flight on an item: TransactionConflict), `throttle` (an item or the table
 * over its throughput).
 */
export type WriteOutcome = 'ok' | 'condition' | 'conflict' | 'throttle';

/** Error names of a throttled request (single-item operations; the SDK's own retries exhausted). */
const THROTTLE_NAMES = new Set(['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded']);
/** Cancellation reason codes of a throttled transaction (API_TransactWriteItems.html, CancellationReason). */
const THROTTLE_REASONS = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded']);

function reasonsOf(err: unknown): CancellationReason[] | undefined {
  if (err instanceof TransactionCanceledException || (err as { name?: string })?.name === 'TransactionCanceledException') {
    return (err as TransactionCanceledException).CancellationReasons ?? [];
  }
  return undefined;
}

/**
 * The outcome of a failed conditional write, or undefined when the error is something else (to
 * be thrown). Uses error names and cancellation reason codes, never message text.
 */
export function classifyWriteError(err: unknown): Exclude<WriteOutcome, 'ok'> | undefined {
  const name = (err as { name?: string })?.name;
  if (err instanceof ConditionalCheckFailedException || name === 'ConditionalCheckFailedException') {
    return 'condition';
  }
  // A single-item write that met an ongoing transaction on its item (transaction-apis.html,
  // "Transaction conflict handling"): not retried by the SDK.
  if (name === 'TransactionConflictException') return 'conflict';
  if (name && THROTTLE_NAMES.has(name)) return 'throttle';
  const reasons = reasonsOf(err);
  if (!reasons) return undefined;
  if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) return 'condition';
  if (reasons.some((r) => r.Code === 'TransactionConflict')) return 'conflict';
  if (reasons.some((r) => r.Code !== undefined && THROTTLE_REASONS.has(r.Code))) return 'throttle';
  return undefined;
}

/** Worth the same write again after a pause: a conflict or a throttle. */
const contended = (o: WriteOutcome | undefined): boolean => o === 'conflict' || o === 'throttle';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The `contention` backoff (backoff.ts) before try `n + 1` after `n` contended tries. */
const backoff = (n: number) => sleep(policyDelay(BACKOFF.contention, Math.max(1, n)));

// ---------------------------------------------------------------------------------------------
// Records ↔ items

/** The task item: the record without its command (see the module comment). */
export function taskItem(rec: TaskRecord): Item {
  const { command: _command, ...rest } = rec;
  return { pk: jobPk(rec.job), sk: taskSk(rec.task), kind: 'task', ...rest };
}

/** The command item of a task (written once, beside its task item). */
export function commandItem(job: string, task: number, command: string): Item {
  return { pk: jobPk(job), sk: commandSk(task), kind: 'command', job, task, command };
}

/** The record from its task item and its command item's command (an older item has it inline). */
function toTask(item: Item | undefined, command?: unknown): TaskRecord | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, kind: _kind, ...rest } = item;
  const t = rest as unknown as TaskRecord;
  return { ...t, command: String(t.command ?? command ?? ''), tags: (t.tags as Record<string, string> | undefined) ?? {} };
}

/** The job from its item and its counter shards (the counts are their sum; `shards` may be empty). */
function toJob(item: Item | undefined, shards: readonly Item[] = []): JobRecord | undefined {
  if (!item) return undefined;
  const counts = emptyCounts();
  let updatedAt = String(item.updatedAt ?? (item.spec as JobSpec).createdAt);
  for (const it of [item, ...shards]) {
    for (const k of COUNT_KEYS) counts[k] += Number(it[k] ?? 0);
    if (typeof it.updatedAt === 'string' && it.updatedAt > updatedAt) updatedAt = it.updatedAt;
  }
  return { ...(item.spec as JobSpec), counts, cancelRequested: Boolean(item.cancelRequested), updatedAt };
}

/** The job from the items of a `begins_with(sk, "JOB")` Query. */
function toJobFromItems(items: readonly Item[]): JobRecord | undefined {
  return toJob(
    items.find((i) => i.sk === JOB_SK),
    items.filter((i) => String(i.sk).startsWith(COUNTER_PREFIX)),
  );
}

/** The instance item (what putInstance writes; the UserData's boot-failure report writes the same). */
export function instanceItem(rec: InstanceRecord): Item {
  return { pk: jobPk(rec.job), sk: instanceSk(rec.instance), kind: 'instance', ...rec };
}

function toInstance(item: Item): InstanceRecord {
  const { pk: _pk, sk: _sk, kind: _kind, ...rest } = item;
  return rest as unknown as InstanceRecord;
}

/** Rough DynamoDB size of an item (for the 4 MB transaction limit). */
function approxSize(item: Item): number {
  return Buffer.byteLength(JSON.stringify(item)) + 100;
}

/** An expression builder with placeholder names and values (safe for reserved words). */
class Expr {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private n = 0;
  name(attr: string): string {
    const k = `#n${this.n++}`;
    this.names[k] = attr;
    return k;
  }
  value(v: unknown): string {
    const k = `:v${this.n++}`;
    this.values[k] = v;
    return k;
  }
  /**
   * The maps for the request, each only when it has entries: DynamoDB refuses an empty
   * ExpressionAttributeNames or ExpressionAttributeValues with a ValidationException
   * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ExpressionAttributeNames.html).
   */
  params(): { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> } {
    return {
      ...(Object.keys(this.names).length > 0 ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * UpdateItem parameters that turn `before` into `after` (changed attributes only; `tags` and keys
 * are never written), conditional on `before.version` — and, with `sameLease`, also on the lease
 * of `before` (its instance and start time): a record kept from an earlier write must not match a
 * task of a job deleted and submitted again under the same name, whose versions start over.
 */
export function taskUpdate(table: string, before: TaskRecord, after: TaskRecord, opts: { sameLease?: boolean } = {}) {
  const e = new Expr();
  const set: string[] = [];
  const remove: string[] = [];
  const b = before as unknown as Item;
  const a = after as unknown as Item;
  for (const attr of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (FROZEN.has(attr)) continue;
    const was = b[attr];
    const now = a[attr];
    if (same(was, now)) continue;
    if (now === undefined) {
      if (was !== undefined) remove.push(e.name(attr));
    } else {
      set.push(`${e.name(attr)} = ${e.value(now)}`);
    }
  }
  let condition = `${e.name('version')} = ${e.value(before.version)}`;
  if (opts.sameLease) {
    for (const attr of ['instance', 'startedAt'] as const) {
      const v = before[attr];
      condition += v === undefined ? ` AND attribute_not_exists(${e.name(attr)})` : ` AND ${e.name(attr)} = ${e.value(v)}`;
    }
  }
  const parts = [set.length ? `SET ${set.join(', ')}` : '', remove.length ? `REMOVE ${remove.join(', ')}` : ''].filter(Boolean);
  return {
    TableName: table,
    Key: { pk: jobPk(before.job), sk: taskSk(before.task) },
    UpdateExpression: parts.join(' '),
    ConditionExpression: condition,
    ...e.params(),
  };
}

/**
 * UpdateItem parameters adding `delta` to counter shard `shard` of the job (undefined: the job
 * item, for a job written by an older gq), conditional on that item existing (the job not deleted).
 */
export function counterUpdate(table: string, job: string, delta: Partial<Counts>, now: number, shard?: number) {
  const e = new Expr();
  const add = Object.entries(delta)
    .filter(([, v]) => v)
    .map(([k, v]) => `${e.name(k)} ${e.value(v)}`);
  const set = `${e.name('updatedAt')} = ${e.value(new Date(now).toISOString())}`;
  return {
    TableName: table,
    Key: { pk: jobPk(job), sk: shard === undefined ? JOB_SK : counterSk(shard) },
    UpdateExpression: `SET ${set}${add.length ? ` ADD ${add.join(', ')}` : ''}`,
    ConditionExpression: `attribute_exists(${e.name('pk')})`,
    ...e.params(),
  };
}

function hasDelta(delta: Partial<Counts>): boolean {
  return Object.values(delta).some((v) => v);
}

/** What an instance item says while its worker runs a task (`gq status` reads the task from it). */
export const busyDetail = (task: number): string => `task ${task}`;

/**
 * UpdateItem parameters marking `instance` BUSY with `task` (part of the claim's transaction).
 * Only these attributes change (the worker's pid, install log and so on stay); an instance with no
 * item yet gets one.
 */
export function instanceBusyUpdate(table: string, task: TaskRecord, instance: string, now: number) {
  return {
    TableName: table,
    Key: { pk: jobPk(task.job), sk: instanceSk(instance) },
    UpdateExpression:
      'SET #kind = :kind, #job = :job, #instance = :instance, #type = if_not_exists(#type, :type), #state = :state, #task = :task, #detail = :detail, #beat = :beat',
    ExpressionAttributeNames: {
      '#kind': 'kind',
      '#job': 'job',
      '#instance': 'instance',
      '#type': 'instanceType',
      '#state': 'state',
      '#task': 'task',
      '#detail': 'detail',
      '#beat': 'heartbeatAt',
    },
    ExpressionAttributeValues: {
      ':kind': 'instance',
      ':job': task.job,
      ':instance': instance,
      ':type': task.instanceType,
      ':state': 'BUSY',
      ':task': task.task,
      ':detail': busyDetail(task.task),
      ':beat': new Date(now).toISOString(),
    },
  };
}

const heldKey = (job: string, task: number): string => `${job}\u0000${task}`;
/** Records kept at most (a worker holds one task at a time; this only bounds misuse). */
const MAX_HELD = 1024;

/** Count a job's task items by state (paginated Query of the `state` attribute only). */
export async function countTasksByState(ddb: DynamoDBDocumentClient, table: string, job: string): Promise<Counts> {
  const counts = emptyCounts();
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': jobPk(job), ':p': TASK_PREFIX },
        ExpressionAttributeNames: { '#s': 'state' },
        ProjectionExpression: '#s',
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const i of out.Items ?? []) {
      const s = i.state as TaskState;
      if (TASK_STATES.includes(s)) counts[countKey(s)]++;
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return counts;
}

// ---------------------------------------------------------------------------------------------

export interface DynamoStatusStoreOptions {
  table: string;
  /** Parallel writes in createJob / cancel / resubmit / deleteJob. Default 8. */
  concurrency?: number;
  /**
   * Parallel task-creating transactions in createJob. They all add to the same job item, and
   * DynamoDB cancels transactions that overlap on an item, so this stays small. Default 2.
   */
  createConcurrency?: number;
  /** Counter shards of the jobs this store creates (1..98). Default 64 (see the module comment). */
  counterShards?: number;
  /** Clock (epoch ms); tests move it to expire leases. */
  now?: () => number;
}

/** Tasks per createJob transaction (plus the job counter update = 100, the limit). */
export const CREATE_CHUNK = 99;
/** Tasks per createJob transaction: each is two puts (task and command) + the counter update = 99. */
export const CREATE_TASKS_PER_TRANSACTION = 49;
const MAX_TRANSACTION_BYTES = 3_500_000;

export class DynamoStatusStore implements StatusStore {
  readonly table: string;
  private readonly concurrency: number;
  private readonly createConcurrency: number;
  private readonly counterShards: number;
  private readonly now: () => number;
  /** Counter shards of each job seen (null: a job of an older gq, counters on the job item). */
  private readonly shards = new Map<string, number | null>();

  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    opts: DynamoStatusStoreOptions,
  ) {
    this.table = opts.table;
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    this.createConcurrency = Math.max(1, opts.createConcurrency ?? 2);
    const n = opts.counterShards ?? DEFAULT_COUNTER_SHARDS;
    if (!Number.isInteger(n) || n < 1 || n > MAX_COUNTER_SHARDS) throw new GqError(`counterShards must be an integer in 1..${MAX_COUNTER_SHARDS}, not ${n}`);
    this.counterShards = n;
    this.now = opts.now ?? Date.now;
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  private async get(pk: string, sk: string): Promise<Item | undefined> {
    const out = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true }));
    return out.Item;
  }

  /** Query every page. */
  private async queryAll(input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.ddb.send(new QueryCommand({ TableName: this.table, ...input, ExclusiveStartKey: start }));
      items.push(...((out.Items ?? []) as Item[]));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** BatchGetItem (≤ 100 keys), consistent; unprocessed keys asked again a bounded number of times. */
  private async batchGet(keys: Array<{ pk: string; sk: string }>): Promise<Item[]> {
    const found: Item[] = [];
    let pending: Array<Record<string, unknown>> = keys;
    // Unprocessed keys are DynamoDB's throttling of a batch: asked again after a backoff, unbounded.
    for (let round = 0; pending.length > 0; round++) {
      if (round > 0) await backoff(round);
      const out = await this.ddb.send(
        new BatchGetCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }),
      );
      found.push(...((out.Responses?.[this.table] ?? []) as Item[]));
      pending = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Array<Record<string, unknown>>;
    }
    return found;
  }

  /** The task (with its command) and its job, in one request. */
  private async readTaskAndJob(job: string, task: number): Promise<[TaskRecord | undefined, JobRecord | undefined]> {
    const items = await this.batchGet([
      { pk: jobPk(job), sk: taskSk(task) },
      { pk: jobPk(job), sk: commandSk(task) },
      { pk: jobPk(job), sk: JOB_SK },
    ]);
    const t = items.find((i) => i.sk === taskSk(task));
    const c = items.find((i) => i.sk === commandSk(task));
    const j = items.find((i) => i.sk === JOB_SK);
    this.noteJob(job, j);
    // Only the spec and cancelRequested of this record are used (the counts are in the shards).
    return [toTask(t, c?.command), toJob(j)];
  }

  /** Remember how a job keeps its counters (from its item). */
  private noteJob(job: string, item: Item | undefined): void {
    if (!item) return;
    this.shards.set(job, typeof item.counterShards === 'number' && item.counterShards > 0 ? item.counterShards : null);
  }

  /** A counter shard of the job chosen at random (undefined: the job item; also for a job that is gone). */
  private async pickShard(job: string): Promise<number | undefined> {
    if (!this.shards.has(job)) this.noteJob(job, await this.get(jobPk(job), JOB_SK));
    const n = this.shards.get(job);
    return n ? Math.floor(Math.random() * n) : undefined;
  }

  /** The job item and its counter shards: one Query of a few KB, whatever the number of tasks. */
  async getJob(name: string): Promise<JobRecord | undefined> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': jobPk(name), ':p': JOB_SK },
      ConsistentRead: true,
    });
    this.noteJob(name, items.find((i) => i.sk === JOB_SK));
    return toJobFromItems(items);
  }

  async listJobs(): Promise<JobRecord[]> {
    const index = await this.queryAll({
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': JOBS_PK },
      ScanIndexForward: false,
    });
    // A job deleted and submitted again can leave two index entries (deleteJob removes the index
    // entry last); BatchGetItem refuses a key asked twice ("Provided list of item keys contains
    // duplicates", https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
    const names = [...new Set(index.map((i) => String(i.job)))];
    // One Query per job (its item and counter shards), a few at a time.
    const limit = pLimit(this.concurrency);
    const jobs = await Promise.all(names.map((n) => limit(() => this.getJob(n))));
    return jobs.filter((j): j is JobRecord => j !== undefined && j.name !== undefined);
  }

  async getTask(job: string, task: number): Promise<TaskRecord | undefined> {
    const items = await this.batchGet([
      { pk: jobPk(job), sk: taskSk(task) },
      { pk: jobPk(job), sk: commandSk(task) },
    ]);
    return toTask(
      items.find((i) => i.sk === taskSk(task)),
      items.find((i) => i.sk === commandSk(task))?.command,
    );
  }

  /**
   * The commands of `tasks` (task number → command): one Query of all when `all`, else
   * BatchGetItem of 100 at a time. Tasks whose item has its command inline need none.
   */
  private async commandsOf(job: string, tasks: readonly Item[], all: boolean): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    const need = tasks.filter((t) => t.command === undefined).map((t) => Number(t.task));
    if (need.length === 0) return out;
    let items: Item[];
    if (all) {
      items = await this.queryAll({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': jobPk(job), ':p': CMD_PREFIX },
        ConsistentRead: true,
      });
    } else {
      const limit = pLimit(this.concurrency);
      const batches: number[][] = [];
      for (let i = 0; i < need.length; i += 100) batches.push(need.slice(i, i + 100));
      items = (await Promise.all(batches.map((b) => limit(() => this.batchGet(b.map((n) => ({ pk: jobPk(job), sk: commandSk(n) }))))))).flat();
    }
    for (const i of items) out.set(Number(i.task), String(i.command));
    return out;
  }

  async listTasks(job: string, opts: { states?: readonly TaskState[] } = {}): Promise<TaskRecord[]> {
    return this.queryTasks(job, opts.states, true);
  }

  /** The job's tasks (in some states), with their commands or not (then `command` is ''). */
  protected async queryTasks(job: string, states: readonly TaskState[] | undefined, withCommands: boolean): Promise<TaskRecord[]> {
    const opts = { states };
    const e = new Expr();
    const pk = e.value(jobPk(job));
    const prefix = e.value(TASK_PREFIX);
    let filter: string | undefined;
    if (opts.states) {
      if (opts.states.length === 0) return [];
      filter = `${e.name('state')} IN (${opts.states.map((s) => e.value(s)).join(', ')})`;
    }
    const items = await this.queryAll({
      KeyConditionExpression: `pk = ${pk} AND begins_with(sk, ${prefix})`,
      ...(filter ? { FilterExpression: filter } : {}),
      ConsistentRead: true,
      ...e.params(),
    });
    const commands = withCommands ? await this.commandsOf(job, items, !filter) : new Map<number, string>();
    return items.map((i) => toTask(i, commands.get(Number(i.task)))!).sort((a, b) => a.task - b.task);
  }

  /** Count the task items by state (one paginated Query); the counters must always equal it. */
  async countTasksByState(job: string): Promise<Counts> {
    return countTasksByState(this.ddb, this.table, job);
  }

  // -------------------------------------------------------------------------------------------
  // Decided writes

  /**
   * Write a decision conditionally on the version read, with its counter delta and any `also`
   * items (the claiming worker's instance item), atomically: one UpdateItem when there is nothing
   * else to write, one TransactWriteItems otherwise.
   */
  private async writeDecision(
    before: TaskRecord,
    write: TaskRecord,
    delta: Partial<Counts>,
    also: ReadonlyArray<{ Update: ReturnType<typeof instanceBusyUpdate> }> = [],
    sameLease = false,
  ): Promise<WriteOutcome> {
    const now = this.now();
    const update = taskUpdate(this.table, before, write, { sameLease });
    const shard = hasDelta(delta) ? await this.pickShard(before.job) : undefined;
    try {
      if (hasDelta(delta) || also.length > 0) {
        await this.ddb.send(
          new TransactWriteCommand({
            TransactItems: [
              { Update: update },
              ...(hasDelta(delta) ? [{ Update: counterUpdate(this.table, before.job, delta, now, shard) }] : []),
              ...also,
            ],
          }),
        );
      } else {
        await this.ddb.send(new UpdateCommand(update));
      }
      return 'ok';
    } catch (err) {
      const outcome = classifyWriteError(err);
      if (!outcome) throw err;
      return outcome;
    }
  }

  /**
   * Read, decide, write conditionally; on a lost race read and decide again, after a backoff when
   * the write was contended (unbounded: each failed condition means another writer succeeded).
   * Returns the decision's result (the one that was written, or the one that needed no write).
   */
  private async decideAndWrite<R>(
    what: string,
    read: () => Promise<TaskRecord | undefined>,
    decide: (task: TaskRecord | undefined, now: number) => Decision<R> | Promise<Decision<R>>,
  ): Promise<R> {
    for (let contendedTries = 0; ; ) {
      const task = await read();
      const d = await decide(task, this.now());
      if (!d.write || !task) return d.result;
      const outcome = await this.writeDecision(task, d.write, d.delta);
      if (outcome === 'ok') return d.result;
      if (contended(outcome)) await backoff(++contendedTries);
    }
  }

  // -------------------------------------------------------------------------------------------
  // claim, heartbeat, complete (and the records this store wrote)

  /** Last task record this store wrote while holding the task, with the job its claim read. */
  private readonly held = new Map<string, { task: TaskRecord; job: JobRecord | undefined }>();

  private keep(rec: TaskRecord, job: JobRecord | undefined): void {
    const key = heldKey(rec.job, rec.task);
    this.held.delete(key);
    // Only a held lease has a next decision by this store; anything else is read afresh.
    if (rec.state !== 'RUNNING') return;
    this.held.set(key, { task: rec, job });
    if (this.held.size > MAX_HELD) this.held.delete(this.held.keys().next().value!);
  }

  /**
   * One task decision: from the record this store wrote last when `useHeld` and it has one, else
   * from a fresh read of the task and its job (one BatchGetItem); then the conditional write.
   * See the module comment for why a kept record decides exactly as a fresh read would.
   */
  private async decideTask<R>(
    what: string,
    job: string,
    task: number,
    useHeld: boolean,
    decide: (t: TaskRecord | undefined, j: JobRecord | undefined, now: number) => Decision<R>,
    also: (d: Decision<R>, t: TaskRecord, now: number) => Array<{ Update: ReturnType<typeof instanceBusyUpdate> }> = () => [],
  ): Promise<R> {
    const key = heldKey(job, task);
    let contendedTries = 0;
    for (;;) {
      const kept = useHeld ? this.held.get(key) : undefined;
      let t: TaskRecord | undefined;
      let j: JobRecord | undefined;
      if (kept) ({ task: t, job: j } = kept);
      else [t, j] = await this.readTaskAndJob(job, task);
      const now = this.now();
      const d = decide(t, j, now);
      if (!d.write || !t) {
        this.held.delete(key);
        // An answer without a write is not checked by any condition: only a fresh read gives it.
        if (kept) continue;
        return d.result;
      }
      let outcome: WriteOutcome;
      try {
        outcome = await this.writeDecision(t, d.write, d.delta, also(d, t, now), kept !== undefined);
      } catch (err) {
        this.held.delete(key);
        throw err;
      }
      if (outcome === 'ok') {
        this.keep(d.write, j);
        return d.result;
      }
      // A failed condition: the item is not what we had (read again). A conflict or a throttle:
      // the same again after a pause, for as long as it takes; the pause is what is bounded.
      if (outcome === 'condition') this.held.delete(key);
      else await backoff(++contendedTries);
    }
  }

  async claim(job: string, task: number, instance: string, leaseMs: number): Promise<ClaimResult> {
    return this.decideTask(
      `claim ${job}/${task}`,
      job,
      task,
      false,
      (t, j, now) => (j ? decideClaim(t, j, instance, now, leaseMs) : { delta: {}, result: { kind: 'missing' } }),
      (d, t, now) => (d.result.kind === 'claimed' ? [{ Update: instanceBusyUpdate(this.table, t, instance, now) }] : []),
    );
  }

  async heartbeat(job: string, task: number, instance: string, leaseMs: number): Promise<HeartbeatResult> {
    return this.decideTask(`heartbeat ${job}/${task}`, job, task, true, (t, j, now) => decideHeartbeat(t, j, instance, now, leaseMs));
  }

  async complete(job: string, task: number, instance: string, outcome: TaskOutcome): Promise<CompleteResult> {
    return this.decideTask(`complete ${job}/${task}`, job, task, true, (t, j, now) =>
      j ? decideComplete(t, j, instance, outcome, now) : { delta: {}, result: { kind: 'lost' } },
    );
  }

  async failUnrun(job: string, task: number, reason: string): Promise<boolean> {
    return this.decideTask(`fail ${job}/${task}`, job, task, false, (t, _j, now) =>
      t ? decideFailUnrun(t, reason, now) : { delta: {}, result: false },
    );
  }

  /**
   * Sets `tags.<key>` only (no version bump, no other attribute): see the module comment.
   * A missing task is a UserError.
   */
  async setTag(job: string, task: number, key: string, value: string): Promise<void> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: jobPk(job), sk: taskSk(task) },
          UpdateExpression: 'SET #tags.#k = :v',
          // size() of a map is its number of entries: a new key only below MAX_TASK_TAGS.
          ConditionExpression: 'attribute_exists(#tags) AND (attribute_exists(#tags.#k) OR size(#tags) < :max)',
          ExpressionAttributeNames: { '#tags': 'tags', '#k': key },
          ExpressionAttributeValues: { ':v': value, ':max': MAX_TASK_TAGS },
        }),
      );
    } catch (err) {
      if (classifyWriteError(err) !== 'condition') throw err;
      if (await this.get(jobPk(job), taskSk(task))) throw tooManyTagsError(job, task, key);
      throw new UserError(`No task ${task} in job "${job}".`);
    }
  }

  async cancel(job: string): Promise<{ cancelled: number; stopping: number }> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: jobPk(job), sk: JOB_SK },
          UpdateExpression: 'SET cancelRequested = :t, updatedAt = :now',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':t': true, ':now': new Date(this.now()).toISOString() },
        }),
      );
    } catch (err) {
      if (classifyWriteError(err) === 'condition') throw new JobNotFoundError(job);
      throw err;
    }
    // Commands are not needed to cancel (decided writes never write them).
    const open = await this.queryTasks(job, ['QUEUED', 'RUNNING'], false);
    const results = await this.bulkDecide(`cancel ${job}`, open, (t, now) =>
      t ? decideCancel(t, now) : { delta: {}, result: 'none' as const },
    );
    return {
      cancelled: results.filter((r) => r.result === 'cancelled').length,
      stopping: results.filter((r) => r.result === 'stopping').length,
    };
  }

  async resubmitFailed(job: string): Promise<NewTask[]> {
    if (!(await this.get(jobPk(job), JOB_SK))) throw new JobNotFoundError(job);
    const failed = await this.listTasks(job, { states: ['FAILED'] });
    const results = await this.bulkDecide(`resubmit ${job}`, failed, (t, now) =>
      t ? decideResubmit(t, now) : { delta: {}, result: false },
    );
    return results
      .filter((r) => r.result && r.task)
      .map((r) => ({ task: r.task!.task, instanceType: r.task!.instanceType, command: r.task!.command }))
      .sort((a, b) => a.task - b.task);
  }

  /**
   * One decision per task of a job (cancel, resubmit), many tasks per transaction: up to 99 task
   * updates (each conditional on its version) + one counter update with their summed delta. The
   * job item is in every transaction, and DynamoDB cancels transactions that overlap on an item,
   * so a few large transactions beat thousands of small ones. When a task changed since it was
   * read, its chunk falls back to read-decide-write task by task.
   */
  private async bulkDecide<R>(
    what: string,
    tasks: readonly TaskRecord[],
    decide: (t: TaskRecord | undefined, now: number) => Decision<R>,
  ): Promise<Array<{ result: R; task: TaskRecord | undefined }>> {
    const chunks: TaskRecord[][] = [];
    for (let i = 0; i < tasks.length; i += CREATE_CHUNK) chunks.push(tasks.slice(i, i + CREATE_CHUNK));
    const limit = pLimit(this.createConcurrency);
    const done = await Promise.all(chunks.map((c) => limit(() => this.decideChunk(what, c, decide))));
    return done.flat();
  }

  private async decideChunk<R>(
    what: string,
    chunk: readonly TaskRecord[],
    decide: (t: TaskRecord | undefined, now: number) => Decision<R>,
  ): Promise<Array<{ result: R; task: TaskRecord | undefined }>> {
    for (let attempt = 1; ; attempt++) {
      const now = this.now();
      const decided = chunk.map((t) => ({ t, d: decide(t, now) }));
      const writes = decided.filter((x) => x.d.write);
      if (writes.length === 0) return decided.map((x) => ({ result: x.d.result, task: x.t }));
      const delta = emptyCounts();
      for (const { d } of writes) for (const [k, v] of Object.entries(d.delta)) delta[k as CountKey] += v ?? 0;
      const job = chunk[0]!.job;
      let outcome: WriteOutcome;
      if (writes.length === 1) {
        outcome = await this.writeDecision(writes[0]!.t, writes[0]!.d.write!, delta);
      } else {
        const shard = hasDelta(delta) ? await this.pickShard(job) : undefined;
        try {
          await this.ddb.send(
            new TransactWriteCommand({
              TransactItems: [
                ...writes.map((x) => ({ Update: taskUpdate(this.table, x.t, x.d.write!) })),
                ...(hasDelta(delta) ? [{ Update: counterUpdate(this.table, job, delta, now, shard) }] : []),
              ],
            }),
          );
          outcome = 'ok';
        } catch (err) {
          const o = classifyWriteError(err);
          if (!o) throw err;
          outcome = o;
        }
      }
      if (outcome === 'ok') return decided.map((x) => ({ result: x.d.result, task: x.d.write ?? x.t }));
      if (outcome === 'condition') break;
      await backoff(attempt); // contended: the same chunk again
    }
    // Something changed under us: each task on its own, read again, decided again.
    const out: Array<{ result: R; task: TaskRecord | undefined }> = [];
    for (const first of chunk) {
      let current: TaskRecord | undefined;
      const result = await this.decideAndWrite(
        `${what}/${first.task}`,
        async () => (current = await this.getTask(first.job, first.task)),
        (t, now) => {
          const d = decide(t, now);
          if (d.write) current = d.write;
          return d;
        },
      );
      out.push({ result, task: current });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // createJob

  async createJob(spec: JobSpec, tasks: readonly NewTask[]): Promise<{ created: number; existing: number }> {
    const seen = new Set<number>();
    for (const t of tasks) {
      if (!Number.isInteger(t.task) || t.task < 1) throw new GqError(`invalid task number ${t.task}`);
      if (seen.has(t.task)) throw new GqError(`task ${t.task} appears twice in job ${spec.name}`);
      seen.add(t.task);
    }
    const now = this.now();
    const fresh = await this.putJob(spec, now);

    let todo: readonly NewTask[] = tasks;
    let existing = 0;
    if (!fresh) {
      // A re-run: skip what is there already (the conditional puts below still guard races).
      const have = await this.queryAll({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': jobPk(spec.name), ':p': TASK_PREFIX },
        ProjectionExpression: 'sk',
        ConsistentRead: true,
      });
      const haveSk = new Set(have.map((i) => String(i.sk)));
      todo = tasks.filter((t) => !haveSk.has(taskSk(t.task)));
      existing = tasks.length - todo.length;
    }

    const chunks: Item[][] = [];
    const commands = new Map<number, Item>();
    let chunk: Item[] = [];
    let bytes = 0;
    for (const t of todo) {
      const item = taskItem(newTaskRecord(spec.name, t, now));
      commands.set(t.task, commandItem(spec.name, t.task, t.command));
      const size = approxSize(item) + approxSize(commands.get(t.task)!);
      if (chunk.length >= CREATE_TASKS_PER_TRANSACTION || (chunk.length > 0 && bytes + size > MAX_TRANSACTION_BYTES)) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(item);
      bytes += size;
    }
    if (chunk.length) chunks.push(chunk);

    const limit = pLimit(this.createConcurrency);
    const results = await Promise.all(chunks.map((c) => limit(() => this.createChunk(spec.name, c, commands))));
    let created = 0;
    for (const r of results) {
      created += r.created;
      existing += r.existing;
    }
    return { created, existing };
  }

  /** Put the job item and its index entry; false when the job was there already (same job). */
  private async putJob(spec: JobSpec, now: number): Promise<boolean> {
    const updatedAt = new Date(now).toISOString();
    const item: Item = {
      pk: jobPk(spec.name),
      sk: JOB_SK,
      kind: 'job',
      job: spec.name,
      spec,
      ...emptyCounts(),
      counterShards: this.counterShards,
      cancelRequested: false,
      createdAt: spec.createdAt,
      updatedAt,
    };
    const shards = Array.from({ length: this.counterShards }, (_, n) => ({
      Put: { TableName: this.table, Item: { pk: jobPk(spec.name), sk: counterSk(n), kind: 'counter', job: spec.name, ...emptyCounts(), updatedAt } },
    }));
    try {
      await this.ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
            ...shards,
            {
              Put: {
                TableName: this.table,
                Item: { pk: JOBS_PK, sk: jobsIndexSk(spec.createdAt, spec.name), kind: 'jobs-index', job: spec.name, createdAt: spec.createdAt },
              },
            },
          ],
        }),
      );
      this.shards.set(spec.name, this.counterShards);
      return true;
    } catch (err) {
      if (classifyWriteError(err) !== 'condition') throw err;
    }
    const old = await this.getJob(spec.name);
    if (!old) throw new GqError(`job ${spec.name} exists and does not exist (deleted while submitting?)`);
    if (old.codeKey !== spec.codeKey || old.total !== spec.total) {
      throw new UserError(`Job "${spec.name}" already exists.`, {
        hint: 'Choose another job name, or clean the old job first (`gq clean`).',
        details: [
          `existing: ${old.total} tasks, code ${old.codeKey}, submitted ${old.createdAt}`,
          `new:      ${spec.total} tasks, code ${spec.codeKey}`,
        ],
      });
    }
    return false;
  }

  /**
   * One transaction: conditional puts of the chunk's tasks + ADD queued by their number. When some
   * task exists already (a concurrent or earlier submit), each task goes alone, paired with its +1.
   */
  private async createChunk(job: string, items: Item[], commands: ReadonlyMap<number, Item>): Promise<{ created: number; existing: number }> {
    // Each task with its command in the same transaction: no task is ever seen without its command
    // (the command's put is unconditional: the task's condition alone decides).
    const put = (item: Item) => [
      { Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
      { Put: { TableName: this.table, Item: commands.get(Number(item.task))! } },
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        const shard = await this.pickShard(job);
        await this.ddb.send(
          new TransactWriteCommand({
            TransactItems: [...items.flatMap(put), { Update: counterUpdate(this.table, job, { queued: items.length }, this.now(), shard) }],
          }),
        );
        return { created: items.length, existing: 0 };
      } catch (err) {
        const outcome = classifyWriteError(err);
        if (contended(outcome)) {
          await backoff(attempt);
          continue;
        }
        const reasons = reasonsOf(err) ?? [];
        // Only a task's condition can fall back item by item; a missing job item cannot.
        const jobGone = reasons[2 * items.length]?.Code === 'ConditionalCheckFailed';
        if (outcome !== 'condition' || jobGone) {
          if (jobGone) throw new GqError(`job ${job} was deleted while its tasks were being created`, { cause: err });
          throw err;
        }
        break;
      }
    }
    let created = 0;
    let existing = 0;
    const limit = pLimit(this.concurrency);
    await Promise.all(
      items.map((item) =>
        limit(async () => {
          for (let attempt = 1; ; attempt++) {
            try {
              const shard = await this.pickShard(job);
              await this.ddb.send(
                new TransactWriteCommand({
                  TransactItems: [...put(item), { Update: counterUpdate(this.table, job, { queued: 1 }, this.now(), shard) }],
                }),
              );
              created++;
              return;
            } catch (err) {
              const outcome = classifyWriteError(err);
              if (outcome === 'condition' && reasonsOf(err)?.[0]?.Code === 'ConditionalCheckFailed') {
                existing++;
                return;
              }
              if (contended(outcome)) {
                await backoff(attempt);
                continue;
              }
              throw err;
            }
          }
        }),
      ),
    );
    return { created, existing };
  }

  // -------------------------------------------------------------------------------------------
  // Instances and deletion

  async putInstance(rec: InstanceRecord): Promise<void> {
    await this.ddb.send(
      new PutCommand({
        TableName: this.table,
        Item: instanceItem(rec),
      }),
    );
  }

  async listInstances(job: string): Promise<InstanceRecord[]> {
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': jobPk(job), ':p': INST_PREFIX },
      ConsistentRead: true,
    });
    return items.map(toInstance).sort((a, b) => a.instance.localeCompare(b.instance));
  }

  /** Tasks and instances first, then the job item and its index entry (so a stopped delete can be re-run). */
  async deleteJob(job: string): Promise<void> {
    for (const [key, h] of this.held) if (h.task.job === job) this.held.delete(key);
    this.shards.delete(job);
    const jobItem = await this.get(jobPk(job), JOB_SK);
    const keys = (
      await this.queryAll({
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': jobPk(job) },
        ProjectionExpression: 'pk, sk',
      })
    ).filter((k) => k.sk !== JOB_SK);
    const limit = pLimit(this.concurrency);
    const batches: Item[][] = [];
    for (let i = 0; i < keys.length; i += 25) batches.push(keys.slice(i, i + 25));
    await Promise.all(batches.map((b) => limit(() => this.batchDelete(b))));
    const last: Item[] = [{ pk: jobPk(job), sk: JOB_SK }];
    if (jobItem?.createdAt) last.push({ pk: JOBS_PK, sk: jobsIndexSk(String(jobItem.createdAt), job) });
    await this.batchDelete(last);
  }

  private async batchDelete(keys: Item[]): Promise<void> {
    await this.batchWrite(keys.map((k) => ({ DeleteRequest: { Key: { pk: k.pk, sk: k.sk } } })));
  }

  /** BatchWriteItem (≤ 25 requests); unprocessed ones sent again. */
  private async batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    let pending = requests;
    for (let round = 0; pending.length > 0; round++) {
      // Unprocessed items are DynamoDB's throttling of a batch: sent again after a backoff, unbounded.
      if (round > 0) await backoff(round);
      const out = await this.ddb.send(new BatchWriteCommand({ RequestItems: { [this.table]: pending } }));
      pending = (out.UnprocessedItems?.[this.table] ?? []) as Array<Record<string, unknown>>;
    }
  }
}
