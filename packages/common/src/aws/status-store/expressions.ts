/**
 * Expression building for the status table: every placeholder name and value of a request comes
 * from one `Expr`, and `Expr.build` is the only way to get them into the request. It adds
 * ExpressionAttributeNames / ExpressionAttributeValues only when they have entries: DynamoDB
 * refuses an empty one with a ValidationException
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ExpressionAttributeNames.html,
 * Expressions.ExpressionAttributeValues.html), and so does the strict layer in front of moto.
 * The request builders of the store's writes (task, counter shard, instance) are pure functions
 * here, tested against the strict layer's rules without the network.
 */
import { busyDetail, type TaskRecord } from '../../job/model.js';
import type { CounterDelta } from '../../job/states.js';
import { counterSk, FAILED_PK, FAILED_SK, FROZEN, instanceSk, JOB_SK, jobPk, taskSk, type Item } from './items.js';

/** The expression maps of a request; each is absent rather than empty. */
export interface ExpressionMaps {
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

/** Placeholder names and values for one request (safe for reserved words and odd characters). */
export class Expr {
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, unknown> = {};
  private n = 0;

  /** A `#name` placeholder for attribute `attr`. */
  name(attr: string): string {
    const k = `#n${this.n++}`;
    this.names[k] = attr;
    return k;
  }

  /** A `:value` placeholder for `v`. */
  value(v: unknown): string {
    const k = `:v${this.n++}`;
    this.values[k] = v;
    return k;
  }

  /**
   * The request `fields` with this builder's maps, each only when it has entries. Build the
   * expressions (which register the placeholders) in `fields` itself: they are evaluated first.
   */
  build<T extends object>(fields: T): T & ExpressionMaps {
    const maps: ExpressionMaps = {};
    if (Object.keys(this.names).length > 0) maps.ExpressionAttributeNames = { ...this.names };
    if (Object.keys(this.values).length > 0) maps.ExpressionAttributeValues = { ...this.values };
    return { ...fields, ...maps };
  }
}

/** The sort keys a Query reads within its partition: those beginning with `prefix`, or `from`..`to` (inclusive). */
export type SortKeyRange = { prefix: string } | { from: string; to: string };

/**
 * KeyConditionExpression for the items of partition `pk` (and `sk` in `range`). `pk` and `sk`
 * are not reserved words, so they need no placeholder names
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html).
 */
export function keyCondition(e: Expr, pk: string, range?: SortKeyRange): string {
  const part = `pk = ${e.value(pk)}`;
  if (!range) return part;
  if ('prefix' in range) return `${part} AND begins_with(sk, ${e.value(range.prefix)})`;
  return `${part} AND sk BETWEEN ${e.value(range.from)} AND ${e.value(range.to)}`;
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
  // The sparse index of FAILED tasks (items.ts FAILED_INDEX): its keys go with the state.
  if (after.state === 'FAILED' && before.state !== 'FAILED') {
    set.push(`${e.name(FAILED_PK)} = ${e.value(jobPk(after.job))}`, `${e.name(FAILED_SK)} = ${e.value(after.task)}`);
  } else if (before.state === 'FAILED' && after.state !== 'FAILED') {
    remove.push(e.name(FAILED_PK), e.name(FAILED_SK));
  }
  let condition = `${e.name('version')} = ${e.value(before.version)}`;
  if (opts.sameLease) {
    for (const attr of ['instance', 'startedAt'] as const) {
      const v = before[attr];
      condition += v === undefined ? ` AND attribute_not_exists(${e.name(attr)})` : ` AND ${e.name(attr)} = ${e.value(v)}`;
    }
  }
  const parts = [set.length ? `SET ${set.join(', ')}` : '', remove.length ? `REMOVE ${remove.join(', ')}` : ''].filter(Boolean);
  return e.build({
    TableName: table,
    Key: { pk: jobPk(before.job), sk: taskSk(before.task) },
    UpdateExpression: parts.join(' '),
    ConditionExpression: condition,
  });
}

/**
 * UpdateItem parameters adding `delta` to counter shard `shard` of the job (undefined: the job
 * item, for a job written by an older gq), conditional on that item existing (the job not deleted).
 */
export function counterUpdate(table: string, job: string, delta: CounterDelta, now: number, shard?: number) {
  const e = new Expr();
  const add = Object.entries(delta)
    .filter(([, v]) => v)
    .map(([k, v]) => `${e.name(k)} ${e.value(v)}`);
  const set = `${e.name('updatedAt')} = ${e.value(new Date(now).toISOString())}`;
  return e.build({
    TableName: table,
    Key: { pk: jobPk(job), sk: shard === undefined ? JOB_SK : counterSk(shard) },
    UpdateExpression: `SET ${set}${add.length ? ` ADD ${add.join(', ')}` : ''}`,
    ConditionExpression: `attribute_exists(${e.name('pk')})`,
  });
}

/** Whether a counter delta changes any counter. */
export function hasDelta(delta: CounterDelta): boolean {
  return Object.values(delta).some((v) => v);
}

/** What an instance item says while its worker runs a task (`gq status` reads the task from it). */

/**
 * UpdateItem parameters marking `instance` BUSY with `task` (part of the claim's transaction).
 * Only these attributes change (the worker's pid, install log and so on stay); an instance with no
 * item yet gets one.
 */
export function instanceBusyUpdate(table: string, task: TaskRecord, instance: string, now: number) {
  const e = new Expr();
  const type = e.name('instanceType');
  const first = e.name('task');
  const all = e.name('tasks');
  const set = [
    ...Object.entries({ kind: 'instance', job: task.job, instance, state: 'BUSY', detail: busyDetail(task.task), heartbeatAt: new Date(now).toISOString() }).map(
      ([attr, v]) => `${e.name(attr)} = ${e.value(v)}`,
    ),
    `${type} = if_not_exists(${type}, ${e.value(task.instanceType)})`,
    // A worker with several slots runs several tasks: `task` stays the first, `tasks` gains this
    // one (the worker's own record writes drop the finished ones). if_not_exists and list_append
    // in SET: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html
    `${first} = if_not_exists(${first}, ${e.value(task.task)})`,
    `${all} = list_append(if_not_exists(${all}, ${e.value([])}), ${e.value([task.task])})`,
  ];
  return e.build({
    TableName: table,
    Key: { pk: jobPk(task.job), sk: instanceSk(instance) },
    UpdateExpression: `SET ${set.join(', ')}`,
  });
}

/** One Update of a TransactWriteItems, as these builders make them. */
export type TransactUpdate = { Update: ReturnType<typeof taskUpdate | typeof counterUpdate | typeof instanceBusyUpdate> };
