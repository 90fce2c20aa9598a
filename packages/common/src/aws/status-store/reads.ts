/**
 * The store's reads: a job (its item and counter shards, one Query whatever the number of tasks),
 * the index of jobs, a task with its command, a job's tasks all at once or a page at a time, and
 * the count of a job's task items by state (what the counters must always equal).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import type { JobRecord, TaskRecord } from '../../job/model.js';
import { countKey, emptyCounts, TASK_STATES, type Counts, type TaskState } from '../../job/states.js';
import { Expr, keyCondition } from './expressions.js';
import { CMD_PREFIX, commandSk, FAILED_INDEX, FAILED_PK, JOB_SK, JOBS_PK, jobPk, TASK_PREFIX, taskSk, toJob, toJobFromItems, toTask, type Item } from './items.js';
import { Table, type StoreContext } from './table.js';

/** BatchGetItem takes at most 100 keys (API_BatchGetItem.html). */
const BATCH_GET_MAX = 100;
/** Most tasks in one page of taskPages (and its default). */
export const MAX_TASK_PAGE = 1000;

/** The job item and its counter shards: one Query of a few KB, whatever the number of tasks. */
export async function getJob(ctx: StoreContext, name: string): Promise<JobRecord | undefined> {
  const e = new Expr();
  const items = await ctx.table.queryAll(e.build({ KeyConditionExpression: keyCondition(e, jobPk(name), { prefix: JOB_SK }), ConsistentRead: true }));
  ctx.shards.note(name, items.find((i) => i.sk === JOB_SK));
  return toJobFromItems(items);
}

export async function listJobs(ctx: StoreContext): Promise<JobRecord[]> {
  const e = new Expr();
  const index = await ctx.table.queryAll(e.build({ KeyConditionExpression: keyCondition(e, JOBS_PK), ScanIndexForward: false }));
  // A job deleted and submitted again can leave two index entries (deleteJob removes the index
  // entry last); BatchGetItem refuses a key asked twice ("Provided list of item keys contains
  // duplicates", https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
  const names = [...new Set(index.map((i) => String(i.job)))];
  // One Query per job (its item and counter shards), a few at a time.
  const limit = pLimit(ctx.concurrency);
  const jobs = await Promise.all(names.map((n) => limit(() => getJob(ctx, n))));
  return jobs.filter((j): j is JobRecord => j !== undefined && j.name !== undefined);
}

/** The task (with its command) and its job, in one request. */
export async function readTaskAndJob(ctx: StoreContext, job: string, task: number): Promise<[TaskRecord | undefined, JobRecord | undefined]> {
  const items = await ctx.table.batchGet([
    { pk: jobPk(job), sk: taskSk(task) },
    { pk: jobPk(job), sk: commandSk(task) },
    { pk: jobPk(job), sk: JOB_SK },
  ]);
  const t = items.find((i) => i.sk === taskSk(task));
  const c = items.find((i) => i.sk === commandSk(task));
  const j = items.find((i) => i.sk === JOB_SK);
  ctx.shards.note(job, j);
  // Only the spec and cancelRequested of this record are used (the counts are in the shards).
  return [toTask(t, c?.command), toJob(j)];
}

export async function getTask(table: Table, job: string, task: number): Promise<TaskRecord | undefined> {
  const items = await table.batchGet([
    { pk: jobPk(job), sk: taskSk(task) },
    { pk: jobPk(job), sk: commandSk(task) },
  ]);
  return toTask(
    items.find((i) => i.sk === taskSk(task)),
    items.find((i) => i.sk === commandSk(task))?.command,
  );
}

/** Task items that need their command item (an item of an older gq has its command inline). */
const withoutCommand = (items: readonly Item[]): number[] => items.filter((t) => t.command === undefined).map((t) => Number(t.task));

/**
 * The commands of `tasks` (task number → command): one Query of all when `all`, else
 * BatchGetItem of 100 at a time. Tasks whose item has its command inline need none.
 */
async function commandsOf(ctx: StoreContext, job: string, tasks: readonly Item[], all: boolean): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const need = withoutCommand(tasks);
  if (need.length === 0) return out;
  let items: Item[];
  if (all) {
    const e = new Expr();
    items = await ctx.table.queryAll(e.build({ KeyConditionExpression: keyCondition(e, jobPk(job), { prefix: CMD_PREFIX }), ConsistentRead: true }));
  } else {
    const limit = pLimit(ctx.concurrency);
    const batches: number[][] = [];
    for (let i = 0; i < need.length; i += BATCH_GET_MAX) batches.push(need.slice(i, i + BATCH_GET_MAX));
    items = (await Promise.all(batches.map((b) => limit(() => ctx.table.batchGet(b.map((n) => ({ pk: jobPk(job), sk: commandSk(n) }))))))).flat();
  }
  for (const i of items) out.set(Number(i.task), String(i.command));
  return out;
}

/**
 * The job's tasks (in some states), with their commands or not (then `command` is ''). With
 * `limit`, the first `limit` in task order: the Query's pages come in sort-key order and it stops
 * at the page that completes them (a FilterExpression applies after a page is read, so a page can
 * match none: the read is bounded by where the matches are, not by their number; Query.FilterExpression in
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html).
 */
export async function queryTasks(ctx: StoreContext, job: string, states: readonly TaskState[] | undefined, withCommands: boolean, limit?: number): Promise<TaskRecord[]> {
  if (states?.length === 0) return [];
  if (states?.length === 1 && states[0] === 'FAILED') {
    const failed = await failedFromIndex(ctx, job, limit);
    if (failed) return withCommandsOf(ctx, job, failed, withCommands, false);
  }
  const e = new Expr();
  const query = e.build({
    KeyConditionExpression: keyCondition(e, jobPk(job), { prefix: TASK_PREFIX }),
    ...(states ? { FilterExpression: `${e.name('state')} IN (${states.map((s) => e.value(s)).join(', ')})` } : {}),
    ConsistentRead: true,
  });
  let items: Item[];
  if (limit === undefined) items = await ctx.table.queryAll(query);
  else {
    items = [];
    for await (const page of ctx.table.queryPages(query)) {
      items.push(...page);
      if (items.length >= limit) break;
    }
    items = items.slice(0, limit);
  }
  return withCommandsOf(ctx, job, items, withCommands, !states);
}

async function withCommandsOf(ctx: StoreContext, job: string, items: Item[], withCommands: boolean, all: boolean): Promise<TaskRecord[]> {
  const commands = withCommands ? await commandsOf(ctx, job, items, all) : new Map<number, string>();
  return items.map((i) => toTask(i, commands.get(Number(i.task)))!).sort((a, b) => a.task - b.task);
}

/**
 * The job's FAILED tasks (the first `limit` in task order) from the sparse index of failed tasks
 * (items.ts FAILED_INDEX), reading only them. A global secondary index is eventually consistent
 * (and a table made before the index has none): when it holds fewer than the job's counter of
 * failed tasks says there are (or up to `limit`), undefined, and the caller reads the task items.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html (no consistent reads).
 */
async function failedFromIndex(ctx: StoreContext, job: string, limit?: number): Promise<Item[] | undefined> {
  const e = new Expr();
  const query = e.build({
    IndexName: FAILED_INDEX,
    KeyConditionExpression: `${e.name(FAILED_PK)} = ${e.value(jobPk(job))}`,
    ...(limit !== undefined ? { Limit: Math.max(1, limit) } : {}),
  });
  const items: Item[] = [];
  try {
    for await (const page of ctx.table.queryPages(query)) {
      items.push(...page);
      if (limit !== undefined && items.length >= limit) break;
    }
  } catch (err) {
    // A table made by an older gq stack has no such index: read the tasks themselves. DynamoDB
    // says ValidationException "The table does not have the specified index: failed" (moto:
    // ResourceNotFoundException "Invalid index: failed ...").
    const { name, message } = err as { name?: string; message?: string };
    if ((name === 'ValidationException' || name === 'ResourceNotFoundException') && /index/i.test(message ?? '')) return undefined;
    throw err;
  }
  // As many as asked: complete, whatever the counter says (no need to read it).
  if (limit !== undefined && items.length >= limit) return items.slice(0, limit);
  const want = Math.min(limit ?? Infinity, (await getJob(ctx, job))?.counts.failed ?? 0);
  return items.length >= want ? items : undefined;
}

/**
 * The job's tasks with their commands, at most `pageSize` (1..1000) a page: one Query of the task
 * items with that Limit per page, continued from its LastEvaluatedKey (a page can hold fewer: a
 * Query also stops at 1 MB; an empty page is skipped), and one Query of the page's commands (the
 * command items of its first to its last task, `BETWEEN` on the sort key). Pages come in sort-key
 * order: task order (task numbers are padded to 7 digits). Only one page is held at a time.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html (Limit: at least 1).
 */
export async function* taskPages(ctx: StoreContext, job: string, pageSize = MAX_TASK_PAGE): AsyncGenerator<TaskRecord[]> {
  const size = Math.min(MAX_TASK_PAGE, Math.max(1, Math.floor(Number.isFinite(pageSize) ? pageSize : MAX_TASK_PAGE)));
  const e = new Expr();
  const tasksQuery = e.build({ KeyConditionExpression: keyCondition(e, jobPk(job), { prefix: TASK_PREFIX }), Limit: size, ConsistentRead: true });
  for await (const items of ctx.table.queryPages(tasksQuery)) {
    if (items.length === 0) continue;
    const commands = new Map<number, string>();
    const need = withoutCommand(items);
    if (need.length > 0) {
      const c = new Expr();
      const range = { from: commandSk(Math.min(...need)), to: commandSk(Math.max(...need)) };
      for await (const page of ctx.table.queryPages(c.build({ KeyConditionExpression: keyCondition(c, jobPk(job), range), ConsistentRead: true }))) {
        for (const i of page) commands.set(Number(i.task), String(i.command));
      }
    }
    yield items.map((i) => toTask(i, commands.get(Number(i.task)))!).sort((a, b) => a.task - b.task);
  }
}

/** Count a job's task items by state (paginated Query of the `state` attribute only). */
export async function countTasksByState(ddb: DynamoDBDocumentClient, table: string, job: string): Promise<Counts> {
  const counts = emptyCounts();
  const e = new Expr();
  const query = e.build({ KeyConditionExpression: keyCondition(e, jobPk(job), { prefix: TASK_PREFIX }), ProjectionExpression: e.name('state'), ConsistentRead: true });
  for await (const page of new Table(ddb, table).queryPages(query)) {
    for (const i of page) {
      const s = i.state as TaskState;
      if (TASK_STATES.includes(s)) counts[countKey(s)]++;
    }
  }
  return counts;
}
