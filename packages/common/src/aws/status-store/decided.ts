/**
 * Decided writes of one task: the decision of a job/transitions.ts decide* function written
 * conditionally on the version read, with its counter delta on one counter shard in the same
 * TransactWriteItems, through the one read-decide-write loop (loop.ts). `decideTask` decides from
 * the record this store wrote last while it holds the task (held.ts), else from a fresh read.
 */
import type { JobRecord, TaskRecord } from '../../job/model.js';
import type { CounterDelta } from '../../job/states.js';
import type { Decision } from '../../job/transitions.js';
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { counterUpdate, hasDelta, taskUpdate, type TransactUpdate } from './expressions.js';
import type { HeldRecords } from './held.js';
import { readDecideWrite } from './loop.js';
import { readTaskAndJob } from './reads.js';
import type { StoreContext } from './table.js';
import { sendWrite, type WriteOutcome } from './write-outcome.js';

/**
 * Write a decision conditionally on the version read (and, with `sameLease`, the lease), with its
 * counter delta and any `also` items (the claiming worker's instance item), atomically: one
 * UpdateItem when there is nothing else to write, one TransactWriteItems otherwise.
 */
export async function writeDecision(
  ctx: StoreContext,
  before: TaskRecord,
  write: TaskRecord,
  delta: CounterDelta,
  also: readonly TransactUpdate[] = [],
  sameLease = false,
): Promise<WriteOutcome> {
  const now = ctx.now();
  const table = ctx.table.name;
  const update = taskUpdate(table, before, write, { sameLease });
  const shard = hasDelta(delta) ? await ctx.shards.pick(before.job) : undefined;
  return sendWrite(() =>
    hasDelta(delta) || also.length > 0
      ? ctx.table.ddb.send(
          new TransactWriteCommand({
            TransactItems: [{ Update: update }, ...(hasDelta(delta) ? [{ Update: counterUpdate(table, before.job, delta, now, shard) }] : []), ...also],
          }),
        )
      : ctx.table.ddb.send(new UpdateCommand(update)),
  );
}

/**
 * Read a task, decide, write conditionally, through the one loop: a lost race reads and decides
 * again. Returns the decision's result (the one written, or the one that needed no write).
 */
export function decideAndWrite<R>(
  ctx: StoreContext,
  read: () => Promise<TaskRecord | undefined>,
  decide: (task: TaskRecord | undefined, now: number) => Decision<R>,
): Promise<R> {
  return readDecideWrite(async () => {
    const task = await read();
    const d = decide(task, ctx.now());
    const write = d.write;
    if (!write || !task) return { result: d.result };
    return { result: d.result, write: () => writeDecision(ctx, task, write, d.delta) };
  });
}

/** The items a decision writes besides the task and its counter shard (the claim's instance item). */
export type AlsoWrite<R> = (d: Decision<R>, t: TaskRecord, now: number) => TransactUpdate[];

/**
 * One task decision: from the record this store wrote last when `useHeld` and it has one, else
 * from a fresh read of the task and its job (one BatchGetItem); then the conditional write. See
 * held.ts for why a kept record decides exactly as a fresh read would.
 */
export function decideTask<R>(
  ctx: StoreContext,
  held: HeldRecords,
  job: string,
  task: number,
  useHeld: boolean,
  decide: (t: TaskRecord | undefined, j: JobRecord | undefined, now: number) => Decision<R>,
  also: AlsoWrite<R> = () => [],
): Promise<R> {
  const decideFrom = async (kept: { task: TaskRecord; job: JobRecord | undefined } | undefined) => {
    const [t, j] = kept ? [kept.task, kept.job] : await readTaskAndJob(ctx, job, task);
    const now = ctx.now();
    return { t, j, now, d: decide(t, j, now), kept: kept !== undefined };
  };
  return readDecideWrite(async () => {
    const kept = useHeld ? held.get(job, task) : undefined;
    let x = await decideFrom(kept);
    if (!x.d.write || !x.t) {
      held.drop(job, task);
      // An answer without a write is not checked by any condition: only a fresh read gives it.
      if (x.kept) x = await decideFrom(undefined);
      if (!x.d.write || !x.t) return { result: x.d.result };
    }
    const { t, j, d, now } = x;
    const write = d.write!;
    return {
      result: d.result,
      write: async () => {
        let outcome: WriteOutcome;
        try {
          outcome = await writeDecision(ctx, t!, write, d.delta, also(d, t!, now), x.kept);
        } catch (err) {
          held.drop(job, task);
          throw err;
        }
        // A failed condition: the item is not what we had (read again). A conflict or a throttle:
        // the same again after the pause (the kept record stays).
        if (outcome === 'ok') held.keep(write, j);
        else if (outcome === 'condition') held.drop(job, task);
        return outcome;
      },
    };
  });
}
