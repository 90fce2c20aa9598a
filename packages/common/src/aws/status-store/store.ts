/**
 * StatusStore on one DynamoDB table (item layout: items.ts).
 *
 * Every task change follows the pure decide* functions of job/transitions.ts: read the task (and
 * the job), decide, then write only the attributes that changed, conditional on the version read,
 * with the counter delta applied to one counter shard in the same TransactWriteItems (decided.ts,
 * through the one read-decide-write loop of loop.ts). So the counters always equal a count of the
 * task items by state.
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
 * Heartbeat and complete decide from the record this store wrote last (held.ts); claim always
 * reads (the task may have been anyone's since), task and job in one BatchGetItem. A claim also
 * records the worker as BUSY with its task (`detail: "task N"`, what `gq status` reads the running
 * tasks through): one more Update, of the instance item, in the claim's own TransactWriteItems,
 * so the worker makes no call of its own for it.
 *
 * Tags: setTag updates only `tags.<key>` and `tagTimes.<key>` (condition: the task exists) and
 * leaves `version` alone; the decided writes never write `tags` or `tagTimes` (they update changed
 * attributes only, never a whole-item Put). Neither can undo the other: a tag set while a
 * heartbeat or complete is in flight is kept, and the tag does not make that heartbeat or
 * complete lose its version race.
 */
import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GqError, UserError } from '../../errors.js';
import { JobNotFoundError, TaskNotFoundError } from '../../port-errors.js';
import { checkListLimit, checkTaskStates } from '../../job/store-rules.js';
import type { CapStop, InstanceRecord, JobRecord, JobSpec, NewTask, TaskRecord } from '../../job/model.js';
import type { Counts, TaskState } from '../../job/states.js';
import { decideCancel, decideClaim, decideComplete, decideFailUnrun, decideHeartbeat, decideResubmit, MAX_TASK_TAGS, tooManyTagsError } from '../../job/transitions.js';
import type { ClaimOptions, ClaimResult, CompleteResult, HeartbeatResult, ListTasksOptions, StatusStore, TaskOutcome } from '../../ports.js';
import { bulkDecide } from './bulk.js';
import { createJob } from './create.js';
import { decideTask } from './decided.js';
import { Expr, instanceBusyUpdate, keyCondition } from './expressions.js';
import { HeldRecords } from './held.js';
import { DEFAULT_COUNTER_SHARDS, INST_PREFIX, instanceItem, JOB_SK, JOBS_PK, jobPk, jobsIndexSk, MAX_COUNTER_SHARDS, taskSk, toInstance, type Item } from './items.js';
import * as reads from './reads.js';
import { CounterShards, Table, type StoreContext } from './table.js';
import { classifyWriteError } from './write-outcome.js';

/** UpdateItem of one progress tag and its time: into the task's `tagTimes` map, or creating it (see setTag). */
function tagUpdate(table: string, job: string, task: number, key: string, value: string, at: string, times: 'into-map' | 'new-map') {
  const e = new Expr();
  const tags = e.name('tags');
  const tag = `${tags}.${e.name(key)}`;
  const tagTimes = e.name('tagTimes');
  // size() of a map is its number of entries: a new key only below MAX_TASK_TAGS.
  const room = `(attribute_exists(${tag}) OR size(${tags}) < ${e.value(MAX_TASK_TAGS)})`;
  const [setTime, hasTimes] =
    times === 'into-map'
      ? [`${tagTimes}.${e.name(key)} = ${e.value(at)}`, `attribute_exists(${tagTimes})`]
      : [`${tagTimes} = ${e.value({ [key]: at })}`, `attribute_not_exists(${tagTimes})`];
  return e.build({
    TableName: table,
    Key: { pk: jobPk(job), sk: taskSk(task) },
    UpdateExpression: `SET ${tag} = ${e.value(value)}, ${setTime}`,
    ConditionExpression: `attribute_exists(${tags}) AND ${hasTimes} AND ${room}`,
  });
}

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

export class DynamoStatusStore implements StatusStore {
  readonly table: string;
  private readonly ctx: StoreContext;
  private readonly held = new HeldRecords();

  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    opts: DynamoStatusStoreOptions,
  ) {
    this.table = opts.table;
    const n = opts.counterShards ?? DEFAULT_COUNTER_SHARDS;
    if (!Number.isInteger(n) || n < 1 || n > MAX_COUNTER_SHARDS) throw new GqError(`counterShards must be an integer in 1..${MAX_COUNTER_SHARDS}, not ${n}`);
    const table = new Table(ddb, opts.table);
    this.ctx = {
      table,
      shards: new CounterShards(table),
      now: opts.now ?? Date.now,
      concurrency: Math.max(1, opts.concurrency ?? 8),
      createConcurrency: Math.max(1, opts.createConcurrency ?? 2),
      counterShards: n,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  async getJob(name: string): Promise<JobRecord | undefined> {
    return reads.getJob(this.ctx, name);
  }

  async listJobs(): Promise<JobRecord[]> {
    return reads.listJobs(this.ctx);
  }

  async getTask(job: string, task: number): Promise<TaskRecord | undefined> {
    return reads.getTask(this.ctx.table, job, task);
  }

  async listTasks(job: string, opts: ListTasksOptions = {}): Promise<TaskRecord[]> {
    checkListLimit(opts.limit);
    return this.queryTasks(job, opts.states, true, opts.limit);
  }

  /** The job's tasks in task order, with their commands, at most `pageSize` (1..1000) a page (reads.ts). */
  taskPages(job: string, pageSize?: number): AsyncIterable<TaskRecord[]> {
    return reads.taskPages(this.ctx, job, pageSize);
  }

  /** The job's tasks (in some states), with their commands or not (then `command` is ''). */
  protected async queryTasks(job: string, states: readonly TaskState[] | undefined, withCommands: boolean, limit?: number): Promise<TaskRecord[]> {
    if (states) checkTaskStates(states);
    return reads.queryTasks(this.ctx, job, states, withCommands, limit);
  }

  /** Count the task items by state (one paginated Query); the counters must always equal it. */
  async countTasksByState(job: string): Promise<Counts> {
    return reads.countTasksByState(this.ddb, this.table, job);
  }

  // -------------------------------------------------------------------------------------------
  // claim, heartbeat, complete, failUnrun: decided writes of one task (decided.ts)

  async claim(job: string, task: number, instance: string, leaseMs: number, opts?: ClaimOptions): Promise<ClaimResult> {
    return decideTask(
      this.ctx,
      this.held,
      job,
      task,
      false,
      (t, j, now) => (j ? decideClaim(t, j, instance, now, leaseMs, opts) : { delta: {}, result: { kind: 'missing' } }),
      (d, t, now) => (d.result.kind === 'claimed' ? [{ Update: instanceBusyUpdate(this.table, t, instance, now) }] : []),
    );
  }

  async heartbeat(job: string, task: number, instance: string, leaseMs: number): Promise<HeartbeatResult> {
    return decideTask(this.ctx, this.held, job, task, true, (t, j, now) => decideHeartbeat(t, j, instance, now, leaseMs));
  }

  async complete(job: string, task: number, instance: string, outcome: TaskOutcome): Promise<CompleteResult> {
    return decideTask(this.ctx, this.held, job, task, true, (t, j, now) =>
      j ? decideComplete(t, j, instance, outcome, now) : { delta: {}, result: { kind: 'lost' } },
    );
  }

  async failUnrun(job: string, task: number, reason: string): Promise<boolean> {
    return decideTask(this.ctx, this.held, job, task, false, (t, _j, now) => (t ? decideFailUnrun(t, reason, now) : { delta: {}, result: false }));
  }

  /**
   * Sets `tags.<key>` and `tagTimes.<key>` (when it was set) only (no version bump, no other
   * attribute): see the module comment. A task item written before tag times has no `tagTimes`
   * map, and a path into a missing map is a ValidationException
   * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html#Expressions.UpdateExpressions.SET.AddingNestedMapAttributes):
   * the first write asks for the map; when its condition fails on such an item, the map is
   * created with this one time. A missing task is a TaskNotFoundError (a UserError).
   */
  async setTag(job: string, task: number, key: string, value: string): Promise<void> {
    const at = new Date(this.ctx.now()).toISOString();
    for (let tries = 0; ; tries++) {
      try {
        await this.ddb.send(new UpdateCommand(tagUpdate(this.table, job, task, key, value, at, 'into-map')));
        return;
      } catch (err) {
        if (classifyWriteError(err) !== 'condition') throw err;
      }
      const item = await this.ctx.table.get(jobPk(job), taskSk(task));
      if (!item) throw new TaskNotFoundError(job, task);
      if (item.tagTimes !== undefined || tries > 0) throw tooManyTagsError(job, task, key);
      try {
        await this.ddb.send(new UpdateCommand(tagUpdate(this.table, job, task, key, value, at, 'new-map')));
        return;
      } catch (err) {
        // Created meanwhile by another tag of the task: once more into the map.
        if (classifyWriteError(err) !== 'condition') throw err;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // cancel and resubmit: one decision per task, many tasks per transaction (bulk.ts)

  /**
   * SET `set(e)` and updatedAt on the job item (and REMOVE `remove(e)`) when it exists and
   * `when(e)` holds: false when `when` does not; JobNotFoundError when there is no job item.
   */
  private async updateJobItem(
    job: string,
    set: (e: Expr) => string,
    o: { remove?: (e: Expr) => string; when?: (e: Expr) => string } = {},
  ): Promise<boolean> {
    const e = new Expr();
    try {
      await this.ddb.send(
        new UpdateCommand(
          e.build({
            TableName: this.table,
            Key: { pk: jobPk(job), sk: JOB_SK },
            UpdateExpression: `SET ${set(e)}, ${e.name('updatedAt')} = ${e.value(new Date(this.ctx.now()).toISOString())}${o.remove ? ` REMOVE ${o.remove(e)}` : ''}`,
            ConditionExpression: `attribute_exists(pk)${o.when ? ` AND ${o.when(e)}` : ''}`,
          }),
        ),
      );
      return true;
    } catch (err) {
      if (classifyWriteError(err) !== 'condition') throw err;
      if (!o.when || !(await this.ctx.table.get(jobPk(job), JOB_SK))) throw new JobNotFoundError(job);
      return false;
    }
  }

  async cancel(job: string): Promise<{ cancelled: number; stopping: number }> {
    await this.updateJobItem(job, (e) => `${e.name('cancelRequested')} = ${e.value(true)}`);
    // Commands are not needed to cancel (decided writes never write them).
    const open = await this.queryTasks(job, ['QUEUED', 'RUNNING'], false);
    const results = await bulkDecide(this.ctx, open, (t, now) => (t ? decideCancel(t, now) : { delta: {}, result: 'none' as const }));
    return {
      cancelled: results.filter((r) => r.result === 'cancelled').length,
      stopping: results.filter((r) => r.result === 'stopping').length,
    };
  }

  async setMaxCost(job: string, maxCost: number): Promise<void> {
    await this.updateJobItem(job, (e) => `${e.name('spec')}.${e.name('maxCost')} = ${e.value(maxCost)}`, {
      remove: (e) => `${e.name('spec')}.${e.name('capStop')}`,
    });
  }

  async markCapReached(job: string, stop: CapStop): Promise<boolean> {
    const capStop = (e: Expr) => `${e.name('spec')}.${e.name('capStop')}`;
    // Nested paths in conditions: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
    return this.updateJobItem(job, (e) => `${capStop(e)} = ${e.value(stop)}`, {
      when: (e) => `attribute_not_exists(${capStop(e)}) AND ${e.name('spec')}.${e.name('maxCost')} = ${e.value(stop.maxCost)}`,
    });
  }

  async resubmitFailed(job: string): Promise<NewTask[]> {
    if (!(await this.ctx.table.get(jobPk(job), JOB_SK))) throw new JobNotFoundError(job);
    const failed = await this.listTasks(job, { states: ['FAILED'] });
    const results = await bulkDecide(this.ctx, failed, (t, now) => (t ? decideResubmit(t, now) : { delta: {}, result: false }));
    return results
      .filter((r) => r.result && r.task)
      .map((r) => ({ task: r.task!.task, instanceType: r.task!.instanceType, command: r.task!.command }))
      .sort((a, b) => a.task - b.task);
  }

  // -------------------------------------------------------------------------------------------
  // createJob (create.ts), instances and deletion

  async createJob(spec: JobSpec, tasks: readonly NewTask[]): Promise<{ created: number; existing: number }> {
    return createJob(this.ctx, spec, tasks);
  }

  async putInstance(rec: InstanceRecord): Promise<void> {
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: instanceItem(rec) }));
  }

  async listInstances(job: string): Promise<InstanceRecord[]> {
    const e = new Expr();
    const items = await this.ctx.table.queryAll(e.build({ KeyConditionExpression: keyCondition(e, jobPk(job), { prefix: INST_PREFIX }), ConsistentRead: true }));
    return items.map(toInstance).sort((a, b) => a.instance.localeCompare(b.instance));
  }

  /** Tasks and instances first, then the job item and its index entry (so a stopped delete can be re-run). */
  async deleteJob(job: string): Promise<void> {
    this.held.dropJob(job);
    this.ctx.shards.forget(job);
    const jobItem = await this.ctx.table.get(jobPk(job), JOB_SK);
    const e = new Expr();
    const keys = (await this.ctx.table.queryAll(e.build({ KeyConditionExpression: keyCondition(e, jobPk(job)), ProjectionExpression: 'pk, sk' }))).filter(
      (k) => k.sk !== JOB_SK,
    );
    await this.ctx.table.deleteKeys(keys, this.ctx.concurrency);
    const last: Item[] = [{ pk: jobPk(job), sk: JOB_SK }];
    if (jobItem?.createdAt) last.push({ pk: JOBS_PK, sk: jobsIndexSk(String(jobItem.createdAt), job) });
    await this.ctx.table.deleteKeys(last);
  }
}
