/**
 * 50 agents on one job under DynamoDB contention (strict-aws contention.ts: transactions hold their
 * items for 20 ms, an item takes 1,000 write units a second): every task is claimed, heartbeaten
 * and completed, no agent ever gives up (before the counter shards every transition transacted on
 * the one job item, and an agent threw "lost the race" after 8 conflicts and exited 70), and the
 * counters equal a count of the task items.
 *
 * The agents are 50 DynamoStatusStores in this process, each looping as gq-agent does over the
 * store (claim → heartbeat → complete), taking task numbers from a shared list in place of SQS.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startStrictLayer, type StrictLayer } from '@gq/strict-aws';
import { DynamoStatusStore } from '../packages/common/src/aws/status-store/index.js';
import type { AwsClients } from '../packages/common/src/aws/clients.js';
import { emptyCounts } from '../packages/common/src/job/states.js';
import { makeSpec, makeTasks } from '../packages/common/test/contract/status.contract.js';
import { createSharedResources, describeAws, motoClients, startMoto, type Moto } from './support/moto.js';

const AGENTS = Number(process.env.GQ_TEST_CONTENTION_AGENTS ?? 50);
// 2,000 tasks (the acceptance figure); 400 in a quick run (GQ_QUICK=1). moto serialises DynamoDB,
// so the run takes as long as moto needs for ~7,000 requests one after the other.
const TASKS = Number(process.env.GQ_TEST_CONTENTION_TASKS ?? (process.env.GQ_QUICK === '1' ? 400 : 2000));
/** A heartbeat for one task in this many (each is one more request to the serialised moto). */
const HEARTBEAT_EVERY = 4;
const LEASE_MS = 60_000;

describeAws('contention: 50 agents, one job', () => {
  let moto: Moto;
  let layer: StrictLayer;
  const clients: AwsClients[] = [];
  let table: string;

  beforeAll(async () => {
    moto = (await startMoto())!;
    layer = await startStrictLayer({ upstream: moto.endpoint, contention: { windowMs: 20, itemWritesPerSecond: 1000 } });
    // A few connection pools, as agents on a few machines would have (each store is its own agent).
    for (let i = 0; i < 5; i++) clients.push(motoClients(layer.endpoint));
    ({ table } = await createSharedResources(layer.endpoint, { table: 'gq-test-contention' }));
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await layer?.stop();
    await moto?.stop();
  });

  it(`${AGENTS} agents finish ${TASKS} tasks: no agent exits, counters = task items`, async () => {
    const job = `contention-${Date.now().toString(36)}`;
    const submitter = new DynamoStatusStore(clients[0]!.ddb, { table });
    await submitter.createJob(makeSpec(job, TASKS), makeTasks(TASKS));
    const queue = makeTasks(TASKS).map((t) => t.task);
    const exits: unknown[] = [];
    const done = new Map<number, string>();

    const agent = async (i: number): Promise<void> => {
      const me = `i-agent-${i}`;
      const store = new DynamoStatusStore(clients[i % clients.length]!.ddb, { table });
      try {
        for (let task = queue.shift(); task !== undefined; task = queue.shift()) {
          const c = await store.claim(job, task, me, LEASE_MS);
          if (c.kind !== 'claimed') throw new Error(`task ${task}: ${c.kind}`);
          if (task % HEARTBEAT_EVERY === 0) expect(await store.heartbeat(job, task, me, LEASE_MS)).toBe('ok');
          expect(await store.complete(job, task, me, { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
          done.set(task, me);
        }
      } catch (err) {
        exits.push(err); // an agent that throws out of its loop is an agent that exits
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: AGENTS }, (_, i) => agent(i)));
    const seconds = (Date.now() - started) / 1000;

    expect(exits).toEqual([]);
    expect(done.size).toBe(TASKS);
    const rec = await submitter.getJob(job);
    expect(rec!.counts).toEqual({ ...emptyCounts(), succeeded: TASKS });
    expect(await submitter.countTasksByState(job)).toEqual(rec!.counts);
    // The emulation did fire: agents met conflicts (and retried them) on the way.
    const { conflicts, throttles, writes } = layer.contention;
    console.log(`contention test: ${TASKS} tasks, ${AGENTS} agents in ${seconds.toFixed(1)} s; ${writes} writes, ${conflicts} conflicts, ${throttles} throttles`);
    expect(conflicts).toBeGreaterThan(0);
  }, 300_000);
});
