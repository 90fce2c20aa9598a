/**
 * createJob on the status table: the job item, its counter shards and its index entry in one
 * transaction, then the tasks 49 a transaction (each task item with its command item, and the
 * queued count added to one counter shard). Idempotent: a re-run skips the tasks that exist, and
 * a chunk that meets a task created meanwhile (a concurrent submit) falls back task by task, each
 * counted only by the submit that created it.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { GqError } from '../../errors.js';
import { checkNewTasks, checkSameJob } from '../../job/store-rules.js';
import type { JobSpec, NewTask } from '../../job/model.js';
import { newTaskRecord } from '../../job/transitions.js';
import { counterUpdate, Expr, keyCondition } from './expressions.js';
import { approxSize, commandItem, counterItem, jobItem, jobPk, jobsIndexItem, TASK_PREFIX, taskItem, taskSk, type Item } from './items.js';
import { CONDITION_FAILED, readDecideWrite } from './loop.js';
import { getJob } from './reads.js';
import type { StoreContext } from './table.js';
import { conditionFailedAt, contended, sendWrite } from './write-outcome.js';

/** Tasks per createJob transaction: each is two puts (task and command) + the counter update = 99. */
export const CREATE_TASKS_PER_TRANSACTION = 49;
const MAX_TRANSACTION_BYTES = 3_500_000;

export async function createJob(ctx: StoreContext, spec: JobSpec, tasks: readonly NewTask[]): Promise<{ created: number; existing: number }> {
  checkNewTasks(spec.name, tasks);
  const now = ctx.now();
  const fresh = await putJob(ctx, spec, now);

  let todo: readonly NewTask[] = tasks;
  let existing = 0;
  if (!fresh) {
    // A re-run: skip what is there already (the conditional puts below still guard races).
    const e = new Expr();
    const have = await ctx.table.queryAll(
      e.build({ KeyConditionExpression: keyCondition(e, jobPk(spec.name), { prefix: TASK_PREFIX }), ProjectionExpression: 'sk', ConsistentRead: true }),
    );
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

  const limit = pLimit(ctx.createConcurrency);
  const results = await Promise.all(chunks.map((c) => limit(() => createChunk(ctx, spec.name, c, commands))));
  let created = 0;
  for (const r of results) {
    created += r.created;
    existing += r.existing;
  }
  return { created, existing };
}

/** Put the job item and its index entry; false when the job was there already (same job). */
async function putJob(ctx: StoreContext, spec: JobSpec, now: number): Promise<boolean> {
  const updatedAt = new Date(now).toISOString();
  const TableName = ctx.table.name;
  const shards = Array.from({ length: ctx.counterShards }, (_, n) => ({ Put: { TableName, Item: counterItem(spec.name, n, updatedAt) } }));
  const outcome = await sendWrite(() =>
    ctx.table.ddb.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName, Item: jobItem(spec, ctx.counterShards, updatedAt), ConditionExpression: 'attribute_not_exists(pk)' } },
          ...shards,
          { Put: { TableName, Item: jobsIndexItem(spec) } },
        ],
      }),
    ),
    // Only a failed condition (the job exists) is an answer here; anything else is thrown.
    (_err, o) => (o === 'condition' ? o : undefined),
  );
  if (outcome === 'ok') {
    ctx.shards.set(spec.name, ctx.counterShards);
    return true;
  }
  const old = await getJob(ctx, spec.name);
  if (!old) throw new GqError(`job ${spec.name} exists and does not exist (deleted while submitting?)`);
  checkSameJob(old, spec);
  return false;
}

/**
 * One transaction: conditional puts of the chunk's tasks + ADD queued by their number. When some
 * task exists already (a concurrent or earlier submit), each task goes alone, paired with its +1.
 */
async function createChunk(ctx: StoreContext, job: string, items: Item[], commands: ReadonlyMap<number, Item>): Promise<{ created: number; existing: number }> {
  const TableName = ctx.table.name;
  // Each task with its command in the same transaction: no task is ever seen without its command
  // (the command's put is unconditional: the task's condition alone decides).
  const put = (item: Item) => [
    { Put: { TableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
    { Put: { TableName, Item: commands.get(Number(item.task))! } },
  ];
  /** The tasks of `these` with their queued count on a shard, as one conditional write. */
  const create = (these: Item[]) => async () => {
    const shard = await ctx.shards.pick(job);
    await ctx.table.ddb.send(
      new TransactWriteCommand({ TransactItems: [...these.flatMap(put), { Update: counterUpdate(TableName, job, { queued: these.length }, ctx.now(), shard) }] }),
    );
  };
  const whole = await readDecideWrite(
    async () => ({
      result: { created: items.length, existing: 0 },
      write: () =>
        sendWrite(create(items), (err, o) => {
          // Only a task's condition can fall back item by item; a missing job item cannot.
          if (o === 'condition' && conditionFailedAt(err, 2 * items.length)) {
            throw new GqError(`job ${job} was deleted while its tasks were being created`, { cause: err });
          }
          return o === 'condition' || contended(o) ? o : undefined;
        }),
    }),
    'stop',
  );
  if (whole !== CONDITION_FAILED) return whole;

  let created = 0;
  let existing = 0;
  const limit = pLimit(ctx.concurrency);
  await Promise.all(
    items.map((item) =>
      limit(async () => {
        const one = await readDecideWrite(
          async () => ({
            result: 'created' as const,
            // The task's own condition: it exists (another submit counted it); anything else is thrown.
            write: () => sendWrite(create([item]), (err, o) => (o === 'condition' ? (conditionFailedAt(err, 0) ? o : undefined) : contended(o) ? o : undefined)),
          }),
          'stop',
        );
        if (one === CONDITION_FAILED) existing++;
        else created++;
      }),
    ),
  );
  return { created, existing };
}
