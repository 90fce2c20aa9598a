#!/usr/bin/env node
// bench/submit-baseline: the bare minimum a submit of the same job must do against AWS, with the
// SDK directly and nothing else — the yardstick bench/submit.mjs compares `gq submit` with.
//
//   node bench/submit-baseline.mjs '<json>'   {endpoint, region, table, job, jobfile, queues: {type: url}}
//
// It makes only:
//  - the DynamoDB writes of the same task and command items gq writes (made by gq's own item
//    mapping, packages/common/src/aws/status-store/), in the same batch size (TransactWriteItems of
//    CREATE_TASKS_PER_TRANSACTION tasks, two in flight, as gq's createJob; without its counter
//    update), and
//  - the same SQS sends (SendMessageBatch of 10, the same bodies), 8 in flight per queue as gq's
//    queue adapter, all queues at once, after the writes (a message must not name a task that is
//    not recorded yet).
// No validation, no bundle, no queue, group or template creation: the queues are made before it
// starts (untimed). It prints its own phase times as JSON on stdout; the caller times the process.
import { readFileSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
// The store's module only (not @gq/common/aws/index, which loads every client: start-up is timed).
import { commandItem, CREATE_TASKS_PER_TRANSACTION, taskItem } from '@gq/common/aws/status-store/index';
import { newTaskRecord } from '@gq/common/job/transitions';

const t0 = performance.now();
const a = JSON.parse(process.argv[2]);
const base = { region: a.region, endpoint: a.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(base), { marshallOptions: { removeUndefinedValues: true } });
const sqs = new SQSClient({ ...base, useQueueUrlAsEndpoint: false });

/** Run fn over items with at most n in flight. */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

// The job file: header, then "type,command" rows (the benchmark's commands have no commas).
const rows = readFileSync(a.jobfile, 'utf8').split('\n').slice(1).filter(Boolean);
const now = Date.now();
const tasks = rows.map((line, i) => {
  const comma = line.indexOf(',');
  return { task: i + 1, instanceType: line.slice(0, comma), command: line.slice(comma + 1) };
});
const items = tasks.map((t) => [taskItem(newTaskRecord(a.job, t, now)), commandItem(a.job, t.task, t.command)]);
const tReady = performance.now();

const chunks = [];
for (let i = 0; i < items.length; i += CREATE_TASKS_PER_TRANSACTION) chunks.push(items.slice(i, i + CREATE_TASKS_PER_TRANSACTION).flat());
await pool(chunks, 2, (c) => ddb.send(new TransactWriteCommand({ TransactItems: c.map((Item) => ({ Put: { TableName: a.table, Item } })) })));
const tWritten = performance.now();

const batches = [];
for (const [type, url] of Object.entries(a.queues)) {
  const nums = tasks.filter((t) => t.instanceType === type).map((t) => t.task);
  const mine = [];
  for (let i = 0; i < nums.length; i += 10) mine.push(nums.slice(i, i + 10));
  batches.push({ url, batches: mine });
}
await Promise.all(
  batches.map((q) =>
    pool(q.batches, Number(a.sendConcurrency ?? 8), async (b) => {
      const out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: q.url,
          Entries: b.map((task, i) => ({ Id: String(i), MessageBody: JSON.stringify({ job: a.job, task }) })),
        }),
      );
      if (out.Failed?.length) throw new Error(`SQS refused ${out.Failed.length} message(s)`);
    }),
  ),
);
const tSent = performance.now();
ddb.destroy();
sqs.destroy();
console.log(
  JSON.stringify({
    startupMs: Math.round(tReady - t0),
    ddbMs: Math.round(tWritten - tReady),
    sqsMs: Math.round(tSent - tWritten),
    totalMs: Math.round(tSent - t0),
    items: items.flat().length,
    transactions: chunks.length,
    sendBatches: batches.reduce((n, q) => n + q.batches.length, 0),
  }),
);
