// bench/contention.mjs (npm run bench:contention): N emulated agents claim, heartbeat and complete
// the tasks of one job through moto and the strict layer with DynamoDB contention on
// (packages/strict-aws/src/contention.ts), and the arithmetic of DynamoDB's documented limits.
//
//   node bench/contention.mjs [--agents 200] [--tasks 10000] [--window 20] [--rate 1000]
//                             [--command-bytes 1024] [--store <dynamo.js>]
//
// --store: the module with DynamoStatusStore (default: this tree's packages/common/dist/aws/
// dynamo.js; give an older build to measure the design before it). An agent whose store call
// throws counts as an exit and is replaced (as Auto Scaling would), on the same task.
// Each agent is a DynamoStatusStore of its own (its own "process") over a few shared clients.
// moto serialises DynamoDB, so the transitions per second measured here are moto's, not
// DynamoDB's: the emulation measures conflicts, throttles and waits; the arithmetic printed at the
// end is what says whether DynamoDB sustains 1,000 transitions a second.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { startStrictLayer, itemSize } from '@gq/strict-aws';
import { makeAwsClients } from '../packages/common/dist/aws/clients.js';
import { JOB_SK, jobPk, taskSk } from '@gq/common/aws/status-store/index';
import { REGION, startMoto } from './moto.mjs';

const { values: a } = parseArgs({
  options: {
    agents: { type: 'string', default: '200' },
    tasks: { type: 'string', default: '10000' },
    window: { type: 'string', default: '20' },
    rate: { type: 'string', default: '1000' },
    'command-bytes': { type: 'string', default: '1024' },
    store: { type: 'string' },
  },
});
const AGENTS = Number(a.agents);
const TASKS = Number(a.tasks);
const COMMAND_BYTES = Number(a['command-bytes']);
const LEASE_MS = 300_000;
const storePath = a.store ? resolve(a.store) : new URL('../packages/common/dist/aws/status-store/index.js', import.meta.url).pathname;
const { DynamoStatusStore } = await import(pathToFileURL(storePath).href);
// The item layout of this tree (whatever the store measured): the keys read below.
const { jobPk, taskSk, JOB_SK } = await import('../packages/common/dist/aws/status-store/index.js');

const moto = await startMoto();
const layer = await startStrictLayer({ upstream: moto.motoEndpoint, contention: { windowMs: Number(a.window), itemWritesPerSecond: Number(a.rate) } });
const clients = Array.from({ length: Math.min(8, AGENTS) }, () =>
  makeAwsClients({ region: REGION, endpoint: layer.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }),
);
const table = 'gq-bench-contention';
await clients[0].dynamodb.send(
  new CreateTableCommand({
    TableName: table,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
  }),
);

const job = `bench-${Date.now().toString(36)}`;
const TYPE = 'c5.large';
const spec = {
  name: job, backend: 'aws', createdAt: new Date().toISOString(), total: TASKS, instanceTypes: { [TYPE]: TASKS },
  codeKey: 'bundles/0.tar.gz', resultsPath: 'results.json', outputs: [], maxAttempts: 3, timeoutSeconds: 0,
  installTimeoutSeconds: 60, installAttempts: 1, visibilitySeconds: 300, idleSeconds: 60,
};
const pad = 'x'.repeat(Math.max(0, COMMAND_BYTES - 20));
const tasks = Array.from({ length: TASKS }, (_, i) => ({ task: i + 1, instanceType: TYPE, command: `echo ${i + 1} ${pad}` }));
const submitter = new DynamoStatusStore(clients[0].ddb, { table });
process.stdout.write(`creating ${TASKS} tasks (${COMMAND_BYTES}-byte commands)... `);
await submitter.createJob(spec, tasks);
console.log('done');
const before = { ...layer.contention };

const queue = tasks.map((t) => t.task);
let exits = 0;
let worst = { ms: 0, op: '' };
const timed = async (op, fn) => {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    const ms = Date.now() - t0;
    if (ms > worst.ms) worst = { ms, op };
  }
};
let transitions = 0;
let heartbeats = 0;
async function agent(i) {
  const me = `i-bench-${i}`;
  let store = new DynamoStatusStore(clients[i % clients.length].ddb, { table });
  for (let task = queue.shift(); task !== undefined; ) {
    try {
      const c = await timed('claim', () => store.claim(job, task, me, LEASE_MS));
      if (c.kind === 'claimed') transitions++;
      if (await timed('heartbeat', () => store.heartbeat(job, task, me, LEASE_MS)) === 'ok') heartbeats++;
      const r = await timed('complete', () => store.complete(job, task, me, { kind: 'succeeded', exitCode: 0 }));
      if (r.kind === 'recorded') transitions++;
      task = queue.shift();
    } catch {
      // The agent exits (gq-agent exits 70 on an unexpected error); a new one takes its place.
      exits++;
      store = new DynamoStatusStore(clients[i % clients.length].ddb, { table });
    }
  }
}
const t0 = Date.now();
await Promise.all(Array.from({ length: AGENTS }, (_, i) => agent(i)));
const seconds = (Date.now() - t0) / 1000;

const rec = await submitter.getJob(job);
const counted = await submitter.countTasksByState(job);
const same = JSON.stringify(rec.counts) === JSON.stringify(counted);
const item = (await clients[0].dynamodb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: jobPk(job) }, sk: { S: taskSk(1) } }, ConsistentRead: true }))).Item;
const taskBytes = itemSize(item);
// An UpdateItem is billed on the larger of the item before and after, 1 WCU per KB
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/provisioned-capacity-mode.html#read-write-capacity-units).
const wcuPerHeartbeat = Math.ceil(taskBytes / 1024);
const c = { writes: layer.contention.writes - before.writes, conflicts: layer.contention.conflicts - before.conflicts, throttles: layer.contention.throttles - before.throttles };

console.log(`\n${AGENTS} agents, ${TASKS} tasks, store ${storePath}`);
console.log(`  transitions:           ${transitions} in ${seconds.toFixed(1)} s = ${(transitions / seconds).toFixed(0)} task transitions/s (moto's serial speed on this machine)`);
console.log(`  conflicts/transition:  ${(c.conflicts / transitions).toFixed(3)} (${c.conflicts} conflicts)`);
console.log(`  throttles/transition:  ${(c.throttles / transitions).toFixed(3)} (${c.throttles} throttles)`);
console.log(`  worst wait:            ${worst.ms} ms (${worst.op}, retries included)`);
console.log(`  agent exits:           ${exits}`);
console.log(`  counters = task items: ${same ? 'yes' : `NO: ${JSON.stringify(rec.counts)} vs ${JSON.stringify(counted)}`}`);
console.log(`  WCU per heartbeat:     ${wcuPerHeartbeat} (the renewed task item is ${taskBytes} bytes; heartbeats ${heartbeats})`);

// The arithmetic for 1,000 task transitions a second of one job (500 claims + 500 completes),
// 500 instances heartbeating every 10 s (a 30 s lease renewed at a third), with DynamoDB's limits:
// 1,000 WCU/s per partition, so per item (bp-partition-key-design.html); a transactional write
// costs 2 WCU per KB (transaction-apis.html, capacity management); a hot item collection is
// split across partitions by sort key, but one item never is (burst-adaptive-capacity.html,
// "isolate frequently accessed items").
const shards = Number((await clients[0].ddb.send(new (await import('@aws-sdk/lib-dynamodb')).GetCommand({ TableName: table, Key: { pk: jobPk(job), sk: JOB_SK } }))).Item?.counterShards ?? 0);
const rate = 1000;
const kb = Math.max(1, wcuPerHeartbeat);
const claimWcu = 2 * (kb + 1 + 1); // task + counter + instance items, each written twice
const completeWcu = 2 * (kb + 1); // task + counter
const hbPerS = 500 / 10;
const jobWcu = (rate / 2) * claimWcu + (rate / 2) * completeWcu + hbPerS * wcuPerHeartbeat;
console.log(`\nDynamoDB arithmetic, ${rate} transitions/s of one job, 500 instances:`);
if (shards > 0) {
  const perShard = (rate / shards) * 2;
  console.log(`  counter shards:        ${shards}; each takes ${rate}/${shards} × 2 WCU = ${perShard.toFixed(1)} WCU/s (limit 1,000 per item: ${perShard <= 1000 ? 'within' : 'OVER'})`);
  console.log(`  conflicts per shard:   a transaction holds its shard ~${a.window} ms: ${(rate / shards).toFixed(1)}/s × ${a.window} ms = ${((rate / shards) * Number(a.window) / 1000).toFixed(2)} in flight on a shard (retried on another shard)`);
} else {
  console.log(`  counters on the job item: every transition writes it: ${rate} × 2 WCU = ${rate * 2} WCU/s on one item (limit 1,000: OVER), and ${rate} × ${a.window} ms = ${(rate * Number(a.window)) / 1000} transactions in flight on it`);
}
console.log(`  task items:            each written by one worker at a time: claim ${claimWcu} WCU, complete ${completeWcu} WCU, heartbeat ${wcuPerHeartbeat} WCU`);
console.log(`  the job's partition key: ${rate / 2} × ${claimWcu} + ${rate / 2} × ${completeWcu} + ${hbPerS} × ${wcuPerHeartbeat} = ${jobWcu} WCU/s = ${Math.ceil(jobWcu / 1000)} partitions' worth;`);
console.log(`    DynamoDB splits a hot item collection across partitions by sort key (gq's table has no LSI), but never one item:`);
console.log(`    ${shards > 0 ? 'sustainable: the hottest items (the counter shards) stay far below 1,000 WCU/s each' : 'NOT sustainable: the job item alone needs twice what one partition gives'}`);

for (const cl of clients) cl.destroy();
await layer.stop();
await moto.stop();
