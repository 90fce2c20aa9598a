/**
 * One decision per task of a job (cancel, resubmit), many tasks per transaction: up to 99 task
 * updates (each conditional on its version) + one counter update with their summed delta. The
 * counter shards are in every transaction, and DynamoDB cancels transactions that overlap on an
 * item, so a few large transactions beat thousands of small ones. When a task changed since it was
 * read, its chunk falls back to read-decide-write task by task.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import type { TaskRecord } from '../../job/model.js';
import { addDelta, type CounterDelta } from '../../job/states.js';
import type { Decision } from '../../job/transitions.js';
import { decideAndWrite, writeDecision } from './decided.js';
import { counterUpdate, hasDelta, taskUpdate } from './expressions.js';
import { CONDITION_FAILED, readDecideWrite } from './loop.js';
import { getTask } from './reads.js';
import type { StoreContext } from './table.js';
import { sendWrite } from './write-outcome.js';

/** Tasks per cancel / resubmit transaction (plus the counter update = 100, the limit). */
export const CREATE_CHUNK = 99;

export type BulkDecide<R> = (t: TaskRecord | undefined, now: number) => Decision<R>;
export type BulkResult<R> = Array<{ result: R; task: TaskRecord | undefined }>;

export async function bulkDecide<R>(ctx: StoreContext, tasks: readonly TaskRecord[], decide: BulkDecide<R>): Promise<BulkResult<R>> {
  const chunks: TaskRecord[][] = [];
  for (let i = 0; i < tasks.length; i += CREATE_CHUNK) chunks.push(tasks.slice(i, i + CREATE_CHUNK));
  const limit = pLimit(ctx.createConcurrency);
  const done = await Promise.all(chunks.map((c) => limit(() => decideChunk(ctx, c, decide))));
  return done.flat();
}

/** The chunk's decisions in one transaction (decided again after a contended one), else task by task. */
async function decideChunk<R>(ctx: StoreContext, chunk: readonly TaskRecord[], decide: BulkDecide<R>): Promise<BulkResult<R>> {
  const job = chunk[0]!.job;
  const table = ctx.table.name;
  const together = await readDecideWrite(async () => {
    const now = ctx.now();
    const decided = chunk.map((t) => ({ t, d: decide(t, now) }));
    const writes = decided.filter((x) => x.d.write);
    if (writes.length === 0) return { result: decided.map((x) => ({ result: x.d.result, task: x.t })) };
    const delta: CounterDelta = {};
    for (const { d } of writes) addDelta(delta, d.delta);
    const result = decided.map((x) => ({ result: x.d.result, task: x.d.write ?? x.t }));
    if (writes.length === 1) return { result, write: () => writeDecision(ctx, writes[0]!.t, writes[0]!.d.write!, delta) };
    return {
      result,
      write: async () => {
        const shard = hasDelta(delta) ? await ctx.shards.pick(job) : undefined;
        return sendWrite(() =>
          ctx.table.ddb.send(
            new TransactWriteCommand({
              TransactItems: [
                ...writes.map((x) => ({ Update: taskUpdate(table, x.t, x.d.write!) })),
                ...(hasDelta(delta) ? [{ Update: counterUpdate(table, job, delta, now, shard) }] : []),
              ],
            }),
          ),
        );
      },
    };
  }, 'stop');
  if (together !== CONDITION_FAILED) return together;
  // Something changed under us: each task on its own, read again, decided again.
  const out: BulkResult<R> = [];
  for (const first of chunk) {
    let current: TaskRecord | undefined;
    const result = await decideAndWrite(
      ctx,
      async () => (current = await getTask(ctx.table, first.job, first.task)),
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
