/**
 * DynamoStatusStore on moto, beyond the contract: counters under racing workers, re-run and
 * concurrent submits, constant-cost `getJob`, and tags that survive concurrent writes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { itemSize } from '@gq/strict-aws';
import { createCallCounter, type AwsClients } from '../../src/aws/clients.js';
import { counterSk, DEFAULT_COUNTER_SHARDS, DynamoStatusStore, jobPk, JOBS_PK, taskSk } from '../../src/aws/status-store/index.js';
import { countKey, emptyCounts, type Counts } from '../../src/job/states.js';
import { MAX_COMMAND_BYTES } from '../../src/job/jobfile/index.js';
import type { TaskRecord } from '../../src/job/model.js';
import { UserError } from '../../src/errors.js';
import { makeSpec, makeTasks } from '../contract/status.contract.js';
import { uniqueJob } from '../contract/util.js';
import {
  describeAws, createSharedResources,
  motoClients,
  startMoto,
  type Moto,
} from '../../../../test/support/moto.js';


describeAws('DynamoStatusStore (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let table: string;
  let st: DynamoStatusStore;
  const counter = createCallCounter();

  // moto deep-copies a table for every transaction: one small table per test keeps that cheap.
  let tables = 0;
  async function freshTable(): Promise<void> {
    const name = `gq-test-status-${++tables}-${randomBytes(3).toString('hex')}`;
    ({ table } = await createSharedResources(moto.endpoint, { table: name }));
    st = new DynamoStatusStore(clients.ddb, { table });
  }

  beforeAll(async () => {
    moto = (await startMoto())!;
    clients = motoClients(moto.endpoint, counter.install);
  });
  beforeEach(freshTable);
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  async function expectConsistent(job: string, expected?: Partial<Counts>): Promise<void> {
    const rec = await st.getJob(job);
    const counted = await st.countTasksByState(job);
    expect(rec!.counts).toEqual(counted);
    if (expected) expect(counted).toEqual({ ...emptyCounts(), ...expected });
  }

  it('4 workers racing for the same 20 tasks: each task claimed once, counters = items', async () => {
    const job = uniqueJob('race4');
    await st.createJob(makeSpec(job, 20), makeTasks(20));
    const won = new Map<number, string>();
    const results = await Promise.all(
      ['w1', 'w2', 'w3', 'w4'].map(async (w) => {
        // Each worker has its own store object (its own process, in real life) on the same clients.
        const mine = new DynamoStatusStore(clients.ddb, { table });
        const kinds: string[] = [];
        for (let t = 1; t <= 20; t++) {
          const r = await mine.claim(job, t, w, 60_000);
          kinds.push(r.kind);
          if (r.kind === 'claimed') {
            expect(won.has(t)).toBe(false);
            won.set(t, w);
          }
        }
        return kinds;
      }),
    );
    expect(won.size).toBe(20);
    const all = results.flat();
    expect(all.filter((k) => k === 'claimed')).toHaveLength(20);
    expect(all.filter((k) => k === 'leased')).toHaveLength(60);
    for (const t of await st.listTasks(job)) expect(t).toMatchObject({ state: 'RUNNING', attempts: 1, instance: won.get(t.task) });
    await expectConsistent(job, { running: 20 });

    // Then they race to finish: each worker completes what it won, and tries the others' too.
    await Promise.all(
      ['w1', 'w2', 'w3', 'w4'].map(async (w) => {
        for (let t = 1; t <= 20; t++) {
          const r = await st.complete(job, t, w, { kind: 'succeeded', exitCode: 0 });
          expect(r.kind).toBe(won.get(t) === w ? 'recorded' : 'lost');
        }
      }),
    );
    await expectConsistent(job, { succeeded: 20 });
  });

  it("a Spot task's move to on-demand is a counter of the job, over the shards, read with getJob (no pass over the tasks)", async () => {
    const job = uniqueJob('moved');
    await st.createJob({ ...makeSpec(job, 3), spotInterruptions: 2 }, makeTasks(3));
    const released = { kind: 'released', reason: 'instance interrupted', interrupted: true } as const;
    // Task 1 is interrupted twice (moves), task 2 once (stays on Spot).
    for (const [task, times] of [[1, 2], [2, 1]] as const) {
      for (let i = 0; i < times; i++) {
        expect((await st.claim(job, task, `i-${task}-${i}`, 60_000)).kind).toBe('claimed');
        await st.complete(job, task, `i-${task}-${i}`, released);
      }
    }
    const type = Object.keys(makeSpec(job, 3).instanceTypes)[0]!;
    counter.reset();
    const rec = await st.getJob(job);
    expect(counter.counts()).toEqual({ 'DynamoDB.Query': 1 }); // as always: job item and shards
    expect(rec!.movedToOnDemand).toEqual({ [type]: 1 });
    expect((await st.getTask(job, 1))!.interruptions).toBe(2);
    await expectConsistent(job, { queued: 3 });
  });

  it("a job's failed tasks are read from the sparse index of FAILED tasks, which holds them only while they are FAILED; a table without the index reads the tasks", async () => {
    // The Query inputs the store sends (which index, if any).
    const queried: Array<string | undefined> = [];
    clients.ddb.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { IndexName?: string; KeyConditionExpression?: string };
        if (input.KeyConditionExpression !== undefined) queried.push(input.IndexName);
        return next(args);
      },
      { step: 'initialize', name: 'testQueryInputs' },
    );
    try {
      const failTasks = async (store: DynamoStatusStore, job: string, tasks: number[]) => {
        for (const n of tasks) {
          expect((await store.claim(job, n, 'i-f', 60_000)).kind).toBe('claimed');
          await store.complete(job, n, 'i-f', { kind: 'failed', exitCode: 3, error: 'exited with code 3', retryable: false });
        }
      };
      const job = uniqueJob('failidx');
      await st.createJob(makeSpec(job, 120), makeTasks(120));
      await failTasks(st, job, [97, 12, 110]);
      queried.length = 0;
      expect((await st.listTasks(job, { states: ['FAILED'], limit: 2 })).map((t) => t.task)).toEqual([12, 97]);
      expect(queried).toEqual(['failed']); // as many as asked: the index alone
      queried.length = 0;
      expect((await st.listTasks(job, { states: ['FAILED'], limit: 10 })).map((t) => t.task)).toEqual([12, 97, 110]);
      expect(queried).toEqual(['failed', undefined]); // fewer than asked: the job's counter (getJob) confirms them
      const all = await st.listTasks(job, { states: ['FAILED'] });
      expect(all.map((t) => [t.task, t.state, t.exitCode, t.command])).toEqual([
        [12, 'FAILED', 3, 'echo 12'],
        [97, 'FAILED', 3, 'echo 97'],
        [110, 'FAILED', 3, 'echo 110'],
      ].map(([n, s, c]) => [n, s, c, makeTasks(120)[(n as number) - 1]!.command]));
      // gq retry: the tasks leave the index with their state; nothing is read from it then.
      await st.resubmitFailed(job);
      const index = await clients.ddb.send(new QueryCommand({ TableName: table, IndexName: 'failed', KeyConditionExpression: 'fpk = :p', ExpressionAttributeValues: { ':p': jobPk(job) } }));
      expect(index.Items).toEqual([]);
      expect(await st.listTasks(job, { states: ['FAILED'] })).toEqual([]);
      await expectConsistent(job, { queued: 120 });

      // A table made before the index (an older gq stack): the same answer from the task items.
      const name = `gq-test-status-old-${randomBytes(3).toString('hex')}`;
      await createSharedResources(moto.endpoint, { table: name }, { failedIndex: false });
      const old = new DynamoStatusStore(clients.ddb, { table: name });
      const job2 = uniqueJob('failold');
      await old.createJob(makeSpec(job2, 30), makeTasks(30));
      await failTasks(old, job2, [30, 4]);
      queried.length = 0;
      expect((await old.listTasks(job2, { states: ['FAILED'], limit: 10 })).map((t) => t.task)).toEqual([4, 30]);
      expect(queried).toEqual(['failed', undefined]); // refused (no such index), then the task items
    } finally {
      clients.ddb.middlewareStack.remove('testQueryInputs');
    }
  });

  it('listTasks without a state filter is a Query real DynamoDB accepts (no empty ExpressionAttributeNames)', async () => {
    // gq results and gq status --tasks list a job's tasks unfiltered; the strict layer in front
    // of moto refuses an empty ExpressionAttributeNames with DynamoDB's ValidationException.
    const job = uniqueJob('unfiltered');
    await st.createJob(makeSpec(job, 3), makeTasks(3));
    expect((await st.listTasks(job)).map((t) => t.task)).toEqual([1, 2, 3]);
    expect((await st.listTasks(job, { states: ['QUEUED'] })).map((t) => t.task)).toEqual([1, 2, 3]);
  });

  it('createJob of 40 tasks with the largest command: every transaction within 4 MB (the strict layer checks)', async () => {
    const job = uniqueJob('big');
    const command = 'x'.repeat(MAX_COMMAND_BYTES);
    const tasks = makeTasks(40).map((t) => ({ ...t, command }));
    expect(await st.createJob(makeSpec(job, 40), tasks)).toEqual({ created: 40, existing: 0 });
    expect((await st.getTask(job, 40))!.command).toBe(command);
    await expectConsistent(job, { queued: 40 });
  });

  it('a heartbeat renews a small item: the 128 KB command lives in an item of its own, read with the task', async () => {
    const job = uniqueJob('cheap');
    const command = 'x'.repeat(MAX_COMMAND_BYTES);
    await st.createJob(makeSpec(job, 1), makeTasks(1).map((t) => ({ ...t, command })));
    const worker = new DynamoStatusStore(clients.ddb, { table });
    const c = await worker.claim(job, 1, 'i-a', 60_000);
    expect(c.kind === 'claimed' && c.task.command).toBe(command);
    expect(await worker.heartbeat(job, 1, 'i-a', 60_000)).toBe('ok');
    const raw = await clients.dynamodb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: jobPk(job) }, sk: { S: taskSk(1) } }, ConsistentRead: true }));
    // DynamoDB bills an UpdateItem 1 WCU per KB of the item: this one is 1 WCU, not 129.
    expect(itemSize(raw.Item as Parameters<typeof itemSize>[0])).toBeLessThan(1024);
    expect((await st.getTask(job, 1))!.command).toBe(command);
    expect((await st.listTasks(job))[0]!.command).toBe(command);
    expect((await st.listTasks(job, { states: ['RUNNING'] }))[0]!.command).toBe(command);
  });

  it('listJobs lists a job once when the index holds it twice (BatchGetItem refuses a key asked twice)', async () => {
    const job = uniqueJob('twice');
    await st.createJob(makeSpec(job, 1), makeTasks(1));
    await clients.ddb.send(new PutCommand({ TableName: table, Item: { pk: JOBS_PK, sk: `1999-01-01T00:00:00.000Z#${job}`, kind: 'jobs-index', job } }));
    expect((await st.listJobs()).filter((j) => j.name === job)).toHaveLength(1);
  });

  it("a worker's task costs one read: claim reads task and job in one BatchGetItem, heartbeats and complete only write", async () => {
    const job = uniqueJob('cost');
    await st.createJob(makeSpec(job, 1), makeTasks(1));
    await st.putInstance({ job, instance: 'i-a', instanceType: 'test.small', state: 'READY', heartbeatAt: new Date().toISOString(), pid: 7 });
    const worker = new DynamoStatusStore(clients.ddb, { table });
    counter.reset();
    expect((await worker.claim(job, 1, 'i-a', 60_000)).kind).toBe('claimed');
    // The instance is marked BUSY inside the claim's transaction.
    expect(counter.counts()).toEqual({ 'DynamoDB.BatchGetItem': 1, 'DynamoDB.TransactWriteItems': 1 });
    expect(await st.listInstances(job)).toEqual([expect.objectContaining({ instance: 'i-a', state: 'BUSY', detail: 'task 1', pid: 7 })]);
    counter.reset();
    expect(await worker.heartbeat(job, 1, 'i-a', 60_000)).toBe('ok');
    expect(await worker.heartbeat(job, 1, 'i-a', 60_000)).toBe('ok');
    expect(await worker.complete(job, 1, 'i-a', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
    expect(counter.counts()).toEqual({ 'DynamoDB.UpdateItem': 2, 'DynamoDB.TransactWriteItems': 1 });
    expect(await st.getTask(job, 1)).toMatchObject({ state: 'SUCCEEDED', version: 4, attempts: 1 });
    await expectConsistent(job, { succeeded: 1 });
    // Nothing is kept of a finished task: a late heartbeat reads, and finds it lost.
    counter.reset();
    expect(await worker.heartbeat(job, 1, 'i-a', 60_000)).toBe('lost');
    expect(counter.counts()).toEqual({ 'DynamoDB.BatchGetItem': 1 });
  });

  it('a record kept from its own write is checked by the write, never trusted: take-over, cancel, retry', async () => {
    let clock = Date.now();
    const now = () => clock;
    const a = new DynamoStatusStore(clients.ddb, { table, now });
    const b = new DynamoStatusStore(clients.ddb, { table, now });
    const job = uniqueJob('kept');
    await st.createJob(makeSpec(job, 3, { maxAttempts: 3 }), makeTasks(3));

    // Task 1: a's lease runs out and b takes the task over; a's next heartbeat and complete are lost.
    expect((await a.claim(job, 1, 'i-a', 1000)).kind).toBe('claimed');
    clock += 2000;
    expect(await b.claim(job, 1, 'i-b', 60_000)).toMatchObject({ kind: 'claimed', task: { attempts: 2 } });
    expect(await a.heartbeat(job, 1, 'i-a', 1000)).toBe('lost');
    expect(await a.complete(job, 1, 'i-a', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'lost' });
    expect(await st.getTask(job, 1)).toMatchObject({ state: 'RUNNING', instance: 'i-b' });

    // Task 2: a failed attempt of a's is retried, but not once the job is cancelled (by someone else).
    expect((await a.claim(job, 2, 'i-a', 60_000)).kind).toBe('claimed');
    expect(await a.heartbeat(job, 2, 'i-a', 60_000)).toBe('ok');
    await st.cancel(job);
    expect(await a.heartbeat(job, 2, 'i-a', 60_000)).toBe('cancel');
    expect(await a.complete(job, 2, 'i-a', { kind: 'failed', error: 'x', retryable: true })).toEqual({ kind: 'recorded', state: 'FAILED' });
    expect(await b.heartbeat(job, 1, 'i-b', 60_000)).toBe('cancel');
    expect(await b.complete(job, 1, 'i-b', { kind: 'cancelled' })).toEqual({ kind: 'recorded', state: 'CANCELLED' });
    await expectConsistent(job, { failed: 1, cancelled: 2 });
  });

  it('a kept record never matches a task of the same job name submitted again (versions start over)', async () => {
    const old = new DynamoStatusStore(clients.ddb, { table });
    const job = uniqueJob('again');
    await st.createJob(makeSpec(job, 1), makeTasks(1));
    expect((await old.claim(job, 1, 'i-old', 60_000)).kind).toBe('claimed');
    // `gq clean --purge` and the same name submitted again, while the old worker still runs.
    await st.deleteJob(job);
    await st.createJob(makeSpec(job, 1, { codeKey: 'bundles/new.tar.gz' }), makeTasks(1));
    expect(await st.claim(job, 1, 'i-new', 60_000)).toMatchObject({ kind: 'claimed', task: { version: 1 } });
    // Same version as the old worker's kept record: the lease in the condition tells them apart.
    expect(await old.heartbeat(job, 1, 'i-old', 60_000)).toBe('lost');
    expect(await old.complete(job, 1, 'i-old', { kind: 'succeeded', exitCode: 0 })).toEqual({ kind: 'lost' });
    expect(await st.getTask(job, 1)).toMatchObject({ state: 'RUNNING', instance: 'i-new', version: 1 });
    await expectConsistent(job, { running: 1 });
  });

  it('createJob re-run after a partial creation: 30 of 50, then all 50 → 50 tasks, queued 50', async () => {
    const job = uniqueJob('partial');
    const spec = makeSpec(job, 50);
    expect(await st.createJob(spec, makeTasks(30))).toEqual({ created: 30, existing: 0 });
    await expectConsistent(job, { queued: 30 });
    expect(await st.createJob(spec, makeTasks(50))).toEqual({ created: 20, existing: 30 });
    await expectConsistent(job, { queued: 50 });
    expect((await st.listTasks(job)).map((t) => t.task)).toEqual(makeTasks(50).map((t) => t.task));
  });

  it('two concurrent submits of the same 250 tasks never count a task twice', async () => {
    const job = uniqueJob('twice');
    const spec = makeSpec(job, 250);
    const other = new DynamoStatusStore(clients.ddb, { table, createConcurrency: 3 });
    const [a, b] = await Promise.all([st.createJob(spec, makeTasks(250)), other.createJob(spec, makeTasks(250))]);
    expect(a.created + b.created).toBe(250);
    expect(a.created + a.existing).toBe(250);
    expect(b.created + b.existing).toBe(250);
    await expectConsistent(job, { queued: 250 });
  });

  it('a task written by someone else between check and write: the chunk falls back item by item', async () => {
    const job = uniqueJob('fallback');
    // Task 7 lands first (another submitter's chunk, say): the first 49-task transaction is cancelled.
    await clients.ddb.send(
      new PutCommand({ TableName: table, Item: { pk: jobPk(job), sk: taskSk(7), kind: 'task', job, task: 7, state: 'QUEUED', version: 0, tags: {} } }),
    );
    counter.reset();
    expect(await st.createJob(makeSpec(job, 120), makeTasks(120))).toEqual({ created: 119, existing: 1 });
    const c = counter.counts();
    // putJob, the cancelled chunk, 49 one-task transactions, the other two chunks (49 tasks a chunk).
    expect(c['DynamoDB.TransactWriteItems']).toBe(1 + 1 + 49 + 2);
    // Only what this submit created is counted (task 7 is the other submitter's to count).
    expect((await st.getJob(job))!.counts.queued).toBe(119);
    expect((await st.listTasks(job)).length).toBe(120);
  });

  // 1,000 by default. 10,000 shows the same in about 30 s (GQ_TEST_BIG_JOB=10000): moto copies the
  // whole table in every transaction, so the cost grows with the square of the job size.
  const BIG = Number(process.env.GQ_TEST_BIG_JOB ?? 1000);
  it(`${BIG} tasks: createJob is 1 + ceil(${BIG} / 49) transactions; getJob is one Query (job and counter shards), as for 10 tasks`, async () => {
    const cost = async (n: number) => {
      const job = uniqueJob(`size${n}`);
      counter.reset();
      await st.createJob(makeSpec(job, n), makeTasks(n));
      const create = { ...counter.counts() };
      counter.reset();
      const rec = await st.getJob(job);
      expect(rec!.counts.queued).toBe(n);
      return { create, get: { ...counter.counts() }, job };
    };
    const small = await cost(10);
    const big = await cost(BIG);
    expect(small.get).toEqual({ 'DynamoDB.Query': 1 });
    expect(big.get).toEqual(small.get);
    // 1 for the job item + its index entry, ceil(n / 49) for the tasks (each with its command); no reads.
    expect(big.create).toEqual({ 'DynamoDB.TransactWriteItems': 1 + Math.ceil(BIG / 49) });
    expect(small.create).toEqual({ 'DynamoDB.TransactWriteItems': 2 });
    const idx = await clients.ddb.send(
      new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': JOBS_PK } }),
    );
    expect(idx.Items!.map((i) => i.job).sort()).toEqual([small.job, big.job].sort());
  });

  it('a tag set while heartbeats and the completion race is never lost, and loses them no race', async () => {
    const job = uniqueJob('tags');
    await st.createJob(makeSpec(job, 1), makeTasks(1));
    await st.claim(job, 1, 'i-a', 60_000);
    // One worker heartbeats (one at a time, as the agent does) while tags pour in from its task.
    const beats = (async () => {
      const out: string[] = [];
      for (let i = 0; i < 10; i++) out.push(await st.heartbeat(job, 1, 'i-a', 60_000));
      return out;
    })();
    const tags = Array.from({ length: 10 }, (_, i) => st.setTag(job, 1, `k${i}`, `v${i}`));
    const [beat] = await Promise.all([beats, ...tags]);
    expect(beat).toEqual(Array(10).fill('ok'));
    const [done] = await Promise.all([
      st.complete(job, 1, 'i-a', { kind: 'succeeded', exitCode: 0 }),
      st.setTag(job, 1, 'last', 'yes'),
    ]);
    expect(done).toEqual({ kind: 'recorded', state: 'SUCCEEDED' });
    const t = (await st.getTask(job, 1))!;
    expect(t.state).toBe('SUCCEEDED');
    expect(t.tags).toEqual({ ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, `v${i}`])), last: 'yes' });
    // Tags never bump the version: claim + 10 heartbeats + complete = 12.
    expect(t.version).toBe(12);
    await expect(st.setTag(job, 99, 'k', 'v')).rejects.toMatchObject({ name: 'TaskNotFoundError' });
    // Keys with dots or odd characters are one map key, not a path.
    await st.setTag(job, 1, 'a.b:c/d', 'x');
    expect((await st.getTask(job, 1))!.tags['a.b:c/d']).toBe('x');
  });

  it('a task item written before tag times (no tagTimes map) gets one at its first tag; the cap on tags still holds', async () => {
    const job = uniqueJob('oldtags');
    await st.createJob(makeSpec(job, 2), makeTasks(2));
    const tags = Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, 'v']));
    for (const [task, t] of [[1, {}], [2, tags]] as const) {
      const item = (await clients.ddb.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :p AND sk = :s', ExpressionAttributeValues: { ':p': jobPk(job), ':s': taskSk(task) } }))).Items![0]!;
      const { tagTimes: _none, ...old } = item;
      await clients.ddb.send(new PutCommand({ TableName: table, Item: { ...old, tags: t } }));
    }
    await st.setTag(job, 1, 'percent_complete', '5');
    await st.setTag(job, 1, 'percent_complete', '6');
    const t1 = (await st.getTask(job, 1))!;
    expect(t1.tags).toEqual({ percent_complete: '6' });
    expect(Object.keys(t1.tagTimes!)).toEqual(['percent_complete']);
    // 49 tags from before: one more fits (and creates the map), the 51st is refused.
    await st.setTag(job, 2, 'fiftieth', 'v');
    await expect(st.setTag(job, 2, 'one-more', 'v')).rejects.toBeInstanceOf(UserError);
    expect(Object.keys((await st.getTask(job, 2))!.tagTimes!)).toEqual(['fiftieth']);
  });

  it('item layout: job, task and instance items share the job partition', async () => {
    const job = uniqueJob('layout');
    await st.createJob(makeSpec(job, 2), makeTasks(2));
    await st.putInstance({ job, instance: 'i-1', instanceType: 'test.small', state: 'READY', heartbeatAt: new Date().toISOString() });
    const out = await clients.ddb.send(
      new QueryCommand({ TableName: table, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': jobPk(job) } }),
    );
    const items = out.Items!;
    const shards = Array.from({ length: DEFAULT_COUNTER_SHARDS }, (_, n) => counterSk(n));
    expect(items.map((i) => i.sk)).toEqual(['CMD#0000001', 'CMD#0000002', 'INST#i-1', 'JOB', ...shards, 'TASK#0000001', 'TASK#0000002']);
    const jobItem = items.find((i) => i.sk === 'JOB')!;
    // The counts live in the shards: the job item's own stay 0 (read as one more shard).
    expect(jobItem).toMatchObject({ queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, cancelRequested: false, counterShards: DEFAULT_COUNTER_SHARDS });
    const sum = (k: string) => items.filter((i) => String(i.sk).startsWith('JOB#COUNT#')).reduce((n, i) => n + Number(i[k]), 0);
    expect(sum('queued')).toBe(2);
    expect(sum('running')).toBe(0);
    expect(jobItem.spec).toMatchObject({ name: job, total: 2 });
    const task = items.find((i) => i.sk === 'TASK#0000002')! as unknown as TaskRecord;
    expect(task).toMatchObject({ job, task: 2, state: 'QUEUED', version: 0, tags: {} });
    // The command lives in an item of its own, so that the task item written at every heartbeat stays small.
    expect(task.command).toBeUndefined();
    expect(items.find((i) => i.sk === 'CMD#0000002')).toMatchObject({ kind: 'command', task: 2, command: 'echo task 2' });
  });

  it('cancel and resubmit keep the counters equal to the items under concurrency', async () => {
    const job = uniqueJob('cancel');
    await st.createJob(makeSpec(job, 40, { maxAttempts: 1 }), makeTasks(40));
    // 10 running, 10 failed, 20 queued; cancel races with workers claiming.
    for (let t = 1; t <= 20; t++) await st.claim(job, t, 'i-a', 60_000);
    for (let t = 11; t <= 20; t++) await st.complete(job, t, 'i-a', { kind: 'failed', error: 'x', retryable: true });
    const [c] = await Promise.all([
      st.cancel(job),
      (async () => {
        for (let t = 21; t <= 40; t++) await st.claim(job, t, 'i-b', 60_000);
      })(),
    ]);
    const counts = (await st.getJob(job))!.counts;
    await expectConsistent(job);
    expect(counts.failed).toBe(10);
    expect(c.cancelled + c.stopping).toBeGreaterThanOrEqual(10);
    const listed = emptyCounts();
    for (const t of await st.listTasks(job)) listed[countKey(t.state)]++;
    expect(listed).toEqual(counts);
    const back = await st.resubmitFailed(job);
    expect(back.map((t) => t.task)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    await expectConsistent(job);
    await expect(st.resubmitFailed(uniqueJob('ghost'))).rejects.toMatchObject({ name: 'JobNotFoundError' });
  });

  it('cancel of 200 queued tasks is a few large transactions, not 200', async () => {
    const job = uniqueJob('bulk');
    await st.createJob(makeSpec(job, 200), makeTasks(200));
    counter.reset();
    expect(await st.cancel(job)).toEqual({ cancelled: 200, stopping: 0 });
    // 99 + 99 + 2 tasks, each transaction with the summed counter delta.
    expect(counter.counts()).toEqual({ 'DynamoDB.UpdateItem': 1, 'DynamoDB.Query': 1, 'DynamoDB.TransactWriteItems': 3 });
    await expectConsistent(job, { cancelled: 200 });
  });

  it('a task that changed after the cancel listed it: its chunk falls back task by task', async () => {
    const job = uniqueJob('stale');
    await st.createJob(makeSpec(job, 5), makeTasks(5));
    const listed = await st.listTasks(job);
    await st.claim(job, 3, 'i-a', 60_000); // after the listing
    class StaleList extends DynamoStatusStore {
      protected override async queryTasks(): Promise<TaskRecord[]> {
        return listed;
      }
    }
    const stale = new StaleList(clients.ddb, { table });
    expect(await stale.cancel(job)).toEqual({ cancelled: 4, stopping: 1 });
    expect(await st.getTask(job, 3)).toMatchObject({ state: 'RUNNING', cancelRequested: true });
    await expectConsistent(job, { cancelled: 4, running: 1 });
  });
});
