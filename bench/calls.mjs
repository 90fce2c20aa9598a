// bench/calls: AWS calls per task over a whole job's lifecycle on moto (part 2 of bench/submit.mjs).
//
// A counting proxy (bench/counting-proxy.mjs) stands in front of moto; the CLI and the instance
// runtime get its URL as AWS_ENDPOINT_URL, so every call of the submitter and of every agent (and
// of its UserData bootstrap) is counted at the wire. Clients are told apart by access key: the
// submitter gets a key of its own, each instance has the one its metadata emulator made, and the
// runtime's own polling of Auto Scaling (key `testing`) is shown apart and not charged to gq.
//
// The instance runtime is the tests' (test/support/instance-runtime.ts), compiled by aws-job.mjs.
//
// The job is submitted without --wait (the bench watches the job straight on moto, uncounted), so
// what is counted is submit + the agents, from boot to leaving the fleet.
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoStatusStore } from '@gq/common/aws/status-store/index';
import { REGION } from './moto.mjs';
import { startCountingProxy } from './counting-proxy.mjs';
import { loadSupport, stackOutputs } from './aws-job.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const SUBMITTER_KEY = 'AKIABENCHSUBMITTER01';

const perTask = (n, tasks) => (n / tasks).toFixed(3);

function table(rows, tasks) {
  const ops = Object.keys(rows).sort();
  const w = Math.max(40, ...ops.map((o) => o.length));
  const lines = [];
  for (const op of ops) lines.push(`  ${op.padEnd(w)} ${String(rows[op]).padStart(6)}  ${perTask(rows[op], tasks).padStart(7)}`);
  return lines.join('\n');
}

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

export async function benchCalls(ctx) {
  const { moto, work, ami, tasks: N, types, gqEnv, run, GQ, setupStack, writeJob, codeDir } = ctx;
  const proxy = await startCountingProxy(moto.endpoint, { clients: { testing: 'runtime', [SUBMITTER_KEY]: 'submitter' } });
  const dir = join(work, 'calls');
  mkdirSync(dir, { recursive: true });
  const home = join(dir, 'home');
  const stack = `gq-calls-${process.pid}`;
  const job = 'calls-bench';
  let runtime;
  try {
    // The stack straight on moto (not counted).
    await setupStack(gqEnv(home, moto.endpoint, stack, ami));
    const { table: statusTable } = await stackOutputs(moto.endpoint, stack);
    const { startInstanceRuntime } = await loadSupport('instance-runtime');
    runtime = await startInstanceRuntime({
      endpoint: proxy.url,
      region: REGION,
      rootDir: join(dir, 'instances'),
      groups: (g) => g.startsWith(`gq-${job}-`),
    });

    const jobfile = writeJob(dir, N, types, (i) => `sh run.sh ${i}`);
    const code = codeDir(dir);
    const env = gqEnv(home, proxy.url, stack, ami, {
      AWS_ACCESS_KEY_ID: SUBMITTER_KEY,
      GQ_MAX_INSTANCES: '2',
      GQ_IDLE: '3',
      GQ_VISIBILITY: '20',
    });
    const countsFile = join(dir, 'submitter-counts.json');
    const t0 = performance.now();
    const sub = await run(
      process.execPath,
      [join(ROOT, 'bench', 'gq-counted.mjs'), countsFile, 'submit', jobfile, '--code', code, '--name', job, '--backend', 'aws', '--json'],
      env,
    );
    if (sub.code !== 0) throw new Error(`gq submit failed (exit ${sub.code}):\n${sub.stderr}`);
    const submitterWire = proxy.counts().submitter ?? {};

    // Watch the job straight on moto (uncounted) until every task is final and every worker left.
    const ddb = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }),
    );
    // The store reads the job as gq does (its item and its counter shards: the job item's own counts stay 0).
    const store = new DynamoStatusStore(ddb, { table: statusTable });
    let last;
    const deadline = Date.now() + Number(process.env.GQ_BENCH_CALLS_TIMEOUT ?? 600) * 1000;
    for (;;) {
      const j = (await store.getJob(job))?.counts;
      last = j;
      if (j && j.succeeded + j.failed + j.cancelled === N) break;
      if (Date.now() > deadline) {
        const is = runtime.instances().map((i) => `${i.id} alive ${i.alive} exit ${i.exitCode}\n${runtime.consoleLog(i.id).split('\n').slice(-20).join('\n')}`);
        throw new Error(`job not done in time: ${JSON.stringify(j)}\n${runtime.errors.join('\n')}\n${is.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const doneMs = performance.now() - t0;
    await runtime.waitFor((is) => is.length > 0 && is.every((i) => i.terminated && !i.alive), 180_000);
    const leftMs = performance.now() - t0;
    ddb.destroy();

    const wire = proxy.counts();
    const submitter = wire.submitter ?? {};
    const agents = wire.others ?? {};
    const instances = runtime.instances().length;
    const sdk = JSON.parse(readFileSync(countsFile, 'utf8'));
    if (last.succeeded !== N) console.log(`!! only ${last.succeeded} of ${N} tasks succeeded (${last.failed} failed)`);

    console.log(`${N} tasks over ${types.length} instance types, GQ_MAX_INSTANCES 2 (${instances} instances), trivial commands writing results.csv`);
    console.log(`job done ${(doneMs / 1000).toFixed(1)} s after submit started; every worker gone after ${(leftMs / 1000).toFixed(1)} s\n`);
    console.log(`  ${'submitter (gq submit)'.padEnd(40)}  calls  per task`);
    console.log(table(submitter, N));
    console.log(`  ${'total'.padEnd(40)} ${String(sum(submitter)).padStart(6)}  ${perTask(sum(submitter), N).padStart(7)}\n`);
    console.log(`  ${'agents (all instances)'.padEnd(40)}  calls  per task`);
    console.log(table(agents, N));
    console.log(`  ${'total'.padEnd(40)} ${String(sum(agents)).padStart(6)}  ${perTask(sum(agents), N).padStart(7)}\n`);
    const total = sum(submitter) + sum(agents);
    console.log(`AWS calls per task, whole lifecycle (submitter + agents): ${perTask(total, N)}  (target ≤ 6)`);

    // Cross-check: the submitter's own SDK counter against the wire.
    const sdkReq = sdk.requests;
    const keys = [...new Set([...Object.keys(sdkReq), ...Object.keys(submitterWire)])].sort();
    const diff = keys.filter((k) => (sdkReq[k] ?? 0) !== (submitterWire[k] ?? 0));
    console.log(
      `cross-check, submitter: SDK call counter ${sum(sdk.counts)} calls / ${sum(sdkReq)} HTTP requests; proxy ${sum(submitterWire)} requests` +
        (diff.length ? ` — differs on ${diff.map((k) => `${k} sdk ${sdkReq[k] ?? 0} wire ${submitterWire[k] ?? 0}`).join(', ')}` : ' — same, operation by operation'),
    );
    const rt = wire.runtime ?? {};
    console.log(`(not charged: the instance runtime's own polling, ${sum(rt)} calls: ${Object.entries(rt).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    if (wire.unsigned) console.log(`(unsigned requests: ${JSON.stringify(wire.unsigned)})`);
    return { perTask: total / N, submitter, agents };
  } finally {
    await runtime?.stop().catch((e) => console.error(String(e)));
    await proxy.close();
  }
}
