/**
 * The on-demand fallback on the CLI's side (workers.ts, enqueue.ts), on the local store and queues
 * with a recording fleet: reconcile starts a type's on-demand group from its own queue, re-sends a
 * lost message to the queue of the task's pool, and enqueue (gq retry) sends a task that had moved
 * to on-demand back to that queue.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, loadConfig, type Backend, type Fleet, type FleetGroup, type JobRecord, type Pool } from '@gq/common';
import { openLocalBackend } from '@gq/common/local/index';
import { reconcile } from '../src/workers.js';
import { enqueueTasks } from '../src/enqueue.js';
import type { CommandContext } from '../src/context.js';

const TYPE = 'c5.large';
const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close();
});

/** A local store and queues behind an "aws" backend whose fleet records what it is asked. */
function setup(groups: FleetGroup[] = []) {
  const local = openLocalBackend({ home: mkdtempSync(join(tmpdir(), 'gq-od-')) });
  opened.push(local);
  const asked: { type: string; desired: number; pool: Pool }[] = [];
  const fleet = {
    describe: async () => groups,
    ensureCapacity: async (_job: JobRecord, type: string, desired: number, pool: Pool = 'main') => {
      asked.push({ type, desired, pool });
      return { instanceType: type, desired, max: 20, instances: [] };
    },
  } as unknown as Fleet;
  const backend = { ...local, name: 'aws', fleet } as unknown as Backend;
  const ctx: CommandContext = { config: loadConfig({}, { GQ_CONFIG: join(tmpdir(), 'gq-od-none.json') }), log: createLogger({ level: 'silent' }), io: { out: () => undefined, err: () => undefined } };
  return { backend, ctx, asked };
}

async function fallbackJob(b: Backend, name: string): Promise<JobRecord> {
  await b.status.createJob(
    {
      name, backend: 'aws', createdAt: new Date().toISOString(), total: 2, instanceTypes: { [TYPE]: 2 }, codeKey: 'bundles/0.tar.gz',
      resultsPath: 'r.csv', outputs: [], maxAttempts: 2, timeoutSeconds: 0, installTimeoutSeconds: 60, installAttempts: 1,
      visibilitySeconds: 30, idleSeconds: 5, spotInterruptions: 2,
    },
    [1, 2].map((task) => ({ task, instanceType: TYPE, command: 'true' })),
  );
  // Task 2 is interrupted twice (released as interrupted, uncharged): it belongs on on-demand now.
  for (let i = 0; i < 2; i++) {
    await b.status.claim(name, 2, 'i-spot', 30_000);
    await b.status.complete(name, 2, 'i-spot', { kind: 'released', reason: 'instance interrupted', interrupted: true });
  }
  return (await b.status.getJob(name))!;
}

const opts = (job: JobRecord) => ({ visibilitySeconds: job.visibilitySeconds, maxReceiveCount: 10 });

describe('the on-demand pool in reconcile and enqueue', () => {
  it('starts the on-demand group from its own queue, and the Spot group from its own', async () => {
    const { backend, ctx, asked } = setup();
    const job = await fallbackJob(backend, 'od-rec');
    await (await backend.queues.ensure(job.name, TYPE, opts(job))).send([1]);
    await (await backend.queues.ensure(job.name, TYPE, opts(job), 'on-demand')).send([2]);
    expect((await reconcile(ctx, backend, job)).restarted).toEqual([TYPE]);
    expect(asked).toEqual([{ type: TYPE, desired: 1, pool: 'main' }, { type: TYPE, desired: 1, pool: 'on-demand' }]);
  });

  it('with a live on-demand worker, starts nothing there', async () => {
    const od: FleetGroup = { instanceType: TYPE, pool: 'on-demand', desired: 1, max: 20, instances: [{ id: 'i-od', state: 'InService', phase: 'running', protected: true, healthy: true }] };
    const { backend, ctx, asked } = setup([od]);
    const job = await fallbackJob(backend, 'od-live');
    await backend.queues.ensure(job.name, TYPE, opts(job));
    await (await backend.queues.ensure(job.name, TYPE, opts(job), 'on-demand')).send([2]);
    await reconcile(ctx, backend, job);
    expect(asked).toEqual([]);
  });

  it('re-sends lost messages each to the queue of its task\'s pool, then starts both groups', async () => {
    const { backend, ctx, asked } = setup();
    const job = await fallbackJob(backend, 'od-lost');
    const main = await backend.queues.ensure(job.name, TYPE, opts(job));
    const od = await backend.queues.ensure(job.name, TYPE, opts(job), 'on-demand');
    await reconcile(ctx, backend, job);
    expect((await main.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).map((m) => m.task)).toEqual([1]);
    expect((await od.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).map((m) => m.task)).toEqual([2]);
    expect(asked.map((a) => a.pool)).toEqual(['main', 'on-demand']);
  });

  it('enqueue makes both queues and sends each task to its pool\'s (gq retry of a task that had moved)', async () => {
    const { backend, ctx } = setup();
    const job = await fallbackJob(backend, 'od-enq');
    const byType = await enqueueTasks(ctx, backend, job, [{ task: 1, instanceType: TYPE }, { task: 2, instanceType: TYPE, pool: 'on-demand' }], { resumable: false, queueNameWaitMs: 0 });
    expect(byType).toEqual({ [TYPE]: 2 });
    const got = async (pool: Pool) => (await (await backend.queues.open(job.name, TYPE, pool)).receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).map((m) => m.task);
    expect(await got('main')).toEqual([1]);
    expect(await got('on-demand')).toEqual([2]);
  });
});
