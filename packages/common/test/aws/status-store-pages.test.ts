/**
 * DynamoStatusStore.taskPages on moto (behind the strict layer): a job's tasks a page at a time
 * with Query pagination (Limit + ExclusiveStartKey), each page with its commands, never the whole
 * job at once; and the page size bounded whatever the caller asks (checked on the request itself).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createCallCounter, type AwsClients } from '../../src/aws/clients.js';
import { DynamoStatusStore, jobPk, taskSk } from '../../src/aws/status-store/index.js';
import { MAX_COMMAND_BYTES } from '../../src/job/jobfile/index.js';
import type { TaskRecord } from '../../src/job/model.js';
import { makeSpec, makeTasks } from '../contract/status.contract.js';
import { uniqueJob } from '../contract/util.js';
import { createSharedResources, describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';

async function collect(pages: AsyncIterable<TaskRecord[]>): Promise<TaskRecord[][]> {
  const out: TaskRecord[][] = [];
  for await (const p of pages) out.push(p);
  return out;
}

describe('taskPages asks DynamoDB for a bounded page (no network)', () => {
  /** A document client that gives `answers` in turn (then nothing) and keeps the requests. */
  function recorder(answers: Array<Record<string, unknown>> = []): { ddb: DynamoDBDocumentClient; inputs: Array<Record<string, unknown>> } {
    const inputs: Array<Record<string, unknown>> = [];
    const ddb = { send: async (cmd: { input: Record<string, unknown> }) => (inputs.push(cmd.input), answers.shift() ?? { Items: [] }) };
    return { ddb: ddb as unknown as DynamoDBDocumentClient, inputs };
  }

  it.each([
    [undefined, 1000],
    [250, 250],
    [5000, 1000],
    [0, 1],
    [-3, 1],
    [2.7, 2],
    [Number.NaN, 1000],
  ])('pageSize %s → Limit %s', async (asked, limit) => {
    const { ddb, inputs } = recorder();
    await collect(new DynamoStatusStore(ddb, { table: 't' }).taskPages('j', asked));
    expect(inputs).toHaveLength(1);
    expect(inputs[0]).toMatchObject({ TableName: 't', Limit: limit, ConsistentRead: true, ExclusiveStartKey: undefined });
  });

  it('continues from each LastEvaluatedKey and skips the empty page DynamoDB may end with', async () => {
    const item = (task: number) => ({ pk: 'JOB#j', sk: taskSk(task), job: 'j', task, command: `c${task}`, state: 'QUEUED', version: 0 });
    const after = (task: number) => ({ pk: 'JOB#j', sk: taskSk(task) });
    // A Limit-full last page comes with a LastEvaluatedKey; the Query after it finds nothing.
    const { ddb, inputs } = recorder([
      { Items: [item(1), item(2)], LastEvaluatedKey: after(2) },
      { Items: [item(3), item(4)], LastEvaluatedKey: after(4) },
      { Items: [] },
    ]);
    const pages = await collect(new DynamoStatusStore(ddb, { table: 't' }).taskPages('j', 2));
    expect(pages.map((p) => p.map((t) => t.task))).toEqual([[1, 2], [3, 4]]);
    expect(inputs.map((i) => i.ExclusiveStartKey)).toEqual([undefined, after(2), after(4)]);
  });
});

describeAws('DynamoStatusStore.taskPages (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let table: string;
  let st: DynamoStatusStore;
  const counter = createCallCounter();

  beforeAll(async () => {
    moto = (await startMoto())!;
    clients = motoClients(moto.endpoint, counter.install);
    ({ table } = await createSharedResources(moto.endpoint, { table: `gq-test-pages-${randomBytes(3).toString('hex')}` }));
    st = new DynamoStatusStore(clients.ddb, { table });
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  it('130 tasks by 50: pages of 50, 50, 30 in task order, each task once with its command; two Queries a page', async () => {
    const job = uniqueJob('pages');
    await st.createJob(makeSpec(job, 130), makeTasks(130));
    counter.reset();
    const pages = await collect(st.taskPages(job, 50));
    expect(pages.map((p) => p.length)).toEqual([50, 50, 30]);
    const all = pages.flat();
    expect(all.map((t) => t.task)).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
    for (const t of all) expect(t).toMatchObject({ job, state: 'QUEUED', command: `echo task ${t.task}`, tags: {} });
    // Each page: one Query of its task items (Limit 50) and one of its commands (BETWEEN its first and last).
    expect(counter.counts()).toEqual({ 'DynamoDB.Query': 6 });
    expect(all).toEqual(await st.listTasks(job));
  });

  it('a job of exactly two pages: two pages, no empty third', async () => {
    const job = uniqueJob('even');
    await st.createJob(makeSpec(job, 20), makeTasks(20));
    expect((await collect(st.taskPages(job, 10))).map((p) => p.length)).toEqual([10, 10]);
  });

  it('pages of the largest commands: the commands of one page span several 1 MB Query pages, all read', async () => {
    const job = uniqueJob('bigcmd');
    const command = (n: number) => `${n} `.padEnd(MAX_COMMAND_BYTES, 'x');
    await st.createJob(makeSpec(job, 30), makeTasks(30).map((t) => ({ ...t, command: command(t.task) })));
    counter.reset();
    const pages = await collect(st.taskPages(job, 12));
    expect(pages.map((p) => p.length)).toEqual([12, 12, 6]);
    for (const t of pages.flat()) expect(t.command).toBe(command(t.task));
    // 12 commands of 128 KB are 1.5 MB: more than one command Query for a full page.
    expect(counter.counts()['DynamoDB.Query']).toBeGreaterThan(3 + 3);
  });

  it('a task item of an older gq with its command inline needs no command read; gaps in task numbers are fine', async () => {
    const job = uniqueJob('inline');
    await st.createJob(makeSpec(job, 4), [1, 2, 5, 9].map((task) => ({ task, instanceType: 'test.small', command: `echo task ${task}` })));
    await clients.ddb.send(
      new PutCommand({
        TableName: table,
        Item: { pk: jobPk(job), sk: taskSk(12), kind: 'task', job, task: 12, instanceType: 'test.small', command: 'old inline', state: 'QUEUED', version: 0, tags: {}, attempts: 0 },
      }),
    );
    const pages = await collect(st.taskPages(job, 2));
    expect(pages.map((p) => p.map((t) => [t.task, t.command]))).toEqual([
      [[1, 'echo task 1'], [2, 'echo task 2']],
      [[5, 'echo task 5'], [9, 'echo task 9']],
      [[12, 'old inline']],
    ]);
    counter.reset();
    expect((await collect(st.taskPages(job, 1))).map((p) => p.length)).toEqual([1, 1, 1, 1, 1]);
    // A Query per task page (and maybe one more that finds the end) + one per page that needs its command.
    expect(counter.counts()['DynamoDB.Query']).toBeGreaterThanOrEqual(5 + 4);
    expect(counter.counts()['DynamoDB.Query']).toBeLessThanOrEqual(6 + 4);
  });
});
