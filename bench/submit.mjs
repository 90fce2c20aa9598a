#!/usr/bin/env node
// bench/submit: `gq submit` on moto against a bare baseline in the same run, then AWS calls per
// task over a whole job's lifecycle.
//
// 1. Submit: a 2,000-row job over 4 instance types (500 tasks per queue) submitted with the real
//    CLI as a subprocess (`node packages/cli/bin/gq.js submit ... --backend aws`), beside
//    bench/submit-baseline.mjs, also a subprocess, that makes only the same DynamoDB writes and SQS
//    sends with the SDK directly. moto's start and the stack (`gq setup`) are outside the timed
//    part; everything `gq submit` does (start-up, checks, bundle, uploads, task records, messages,
//    launch templates and groups) is inside. Each side gets a fresh table and fresh queues, so
//    neither pays for the other's data in moto. Three runs by default, the side that goes first
//    alternating (a shared machine's load drifts); prints each run's wall times (gq's by phase,
//    from its --verbose log) and the median ratio gq / baseline. Target: ≤ 1.2.
//
// 2. Calls per task: a job (200 tasks over 2 types, trivial commands that write a results file,
//    GQ_MAX_INSTANCES 2) run to completion by the instance runtime (test/support/instance-runtime.ts,
//    compiled here with esbuild: instances boot from their real UserData and run the real agent
//    bundle). A counting HTTP proxy in front of moto sees every AWS call, of the submitter and of
//    the agents (told apart by their access key: the CLI gets its own, each instance has the one
//    its metadata emulator hands out; the runtime's own polling uses `testing` and is left out).
//    The submitter's calls are also counted inside it with createCallCounter (SDK middleware) as a
//    cross-check. Prints calls per task by operation and in total. Target: ≤ 6.
//
//   node bench/submit.mjs [--tasks 2000] [--types 4] [--runs 3] [--calls-tasks 200] [--calls-types 2]
//                         [--only submit|calls]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { REGION, startMoto } from './moto.mjs';
import { GQ, gqEnv, run, setupStack, x86Ami } from './aws-job.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const N = Number(opt('tasks', 2000));
const TYPES_N = Number(opt('types', 4));
const RUNS = Number(opt('runs', 3));
const CALLS_N = Number(opt('calls-tasks', 200));
const CALLS_TYPES_N = Number(opt('calls-types', 2));
const ONLY = opt('only', undefined);

const ROOT = resolve(import.meta.dirname, '..');
const ALL_TYPES = ['t3.micro', 't3.small', 'c5.large', 'm5.large', 'c5.xlarge', 'm5.xlarge', 't3.medium', 'r5.large'];
const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };

const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;

/** A job file of n rows over the given types, round robin; trivial commands without commas. */
function writeJob(dir, n, types, command) {
  const rows = Array.from({ length: n }, (_, i) => `${types[i % types.length]},${command(i + 1)}`);
  const file = join(dir, `jobs-${n}.csv`);
  writeFileSync(file, ['instance_type,command', ...rows].join('\n') + '\n');
  return file;
}

function codeDir(dir) {
  const code = join(dir, 'code');
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'README'), 'bench code\n');
  writeFileSync(join(code, 'run.sh'), '#!/bin/sh\necho "task,value" > results.csv\necho "$GQ_TASK,$1" >> results.csv\n');
  return code;
}

// ---------------------------------------------------------------------------------------------
// 1. Submit wall time

/** Where gq's time went, from the debug log lines of `gq submit --verbose` (best effort). */
function phasesOf(stderr, started) {
  const marks = [
    ['configuration', 'start-up'],
    ['job checked; nothing written yet', 'checks'],
    ['backend opened', 'stack'],
    ['code bundle', 'bundle'],
    ['tasks recorded', 'DynamoDB'],
    ['tasks enqueued', 'SQS'],
    ['workers started', 'groups'],
  ];
  const times = new Map();
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line);
      if (typeof j.time === 'number' && typeof j.msg === 'string' && !times.has(j.msg)) times.set(j.msg, j.time);
    } catch {
      /* not a log line */
    }
  }
  let prev = started;
  const out = [];
  for (const [msg, label] of marks) {
    const t = times.get(msg);
    if (t === undefined) return undefined;
    out.push(`${label} ${((t - prev) / 1000).toFixed(2)}`);
    prev = t;
  }
  return out.join(', ');
}

async function benchSubmit(moto, work, ami) {
  const types = ALL_TYPES.slice(0, TYPES_N);
  const jobfile = writeJob(work, N, types, (i) => `sh run.sh ${i}`);
  const code = codeDir(work);
  const results = [];
  for (let r = 1; r <= RUNS; r++) {
    // Untimed: a fresh stack per run (gq's table starts empty), and the baseline's own fresh table
    // and queues (neither side pays for the other's data in moto).
    const stack = `gq-bench-${r}-${process.pid}`;
    const home = join(work, `home-${r}`);
    mkdirSync(home, { recursive: true });
    const env = gqEnv(home, moto.endpoint, stack, ami);
    await setupStack(env);
    const baseline = await baselineResources(moto.endpoint, r, types);

    const timeGq = async () => {
      const started = Date.now();
      const gq = await run(process.execPath, [GQ, 'submit', jobfile, '--code', code, '--name', `bench-${r}`, '--backend', 'aws', '--json', '--verbose'], env);
      if (gq.code !== 0) throw new Error(`gq submit failed (exit ${gq.code}):\n${gq.stderr}`);
      const out = JSON.parse(gq.stdout.trim().split('\n').pop());
      if (out.created !== N) throw new Error(`gq created ${out.created} of ${N} tasks`);
      return { ms: gq.ms, phases: phasesOf(gq.stderr, started) };
    };
    const timeBaseline = async () => {
      const arg = JSON.stringify({ endpoint: moto.endpoint, region: REGION, jobfile, job: `baseline-${r}`, ...baseline });
      const base = await run(process.execPath, [join(ROOT, 'bench', 'submit-baseline.mjs'), arg], env);
      if (base.code !== 0) throw new Error(`baseline failed:\n${base.stderr}`);
      return { ms: base.ms, phases: JSON.parse(base.stdout) };
    };
    // Alternate which side goes first: the machine's load drifts.
    const load = os.loadavg()[0].toFixed(1);
    let gq, base;
    if (r % 2 === 1) {
      gq = await timeGq();
      base = await timeBaseline();
    } else {
      base = await timeBaseline();
      gq = await timeGq();
    }
    results.push({ gqMs: gq.ms, baseMs: base.ms });
    console.log(
      `run ${r} (${r % 2 === 1 ? 'gq first' : 'baseline first'}, load average ${load}): ratio ${(gq.ms / base.ms).toFixed(2)}\n` +
        `  gq submit  ${secs(gq.ms)}${gq.phases ? ` (${gq.phases})` : ''}\n` +
        `  baseline   ${secs(base.ms)} (DynamoDB ${secs(base.phases.ddbMs)}, SQS ${secs(base.phases.sqsMs)}, the rest start-up)`,
    );
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const gqMs = med(results.map((x) => x.gqMs));
  const baseMs = med(results.map((x) => x.baseMs));
  const ratio = med(results.map((x) => x.gqMs / x.baseMs));
  console.log(`\n${N} tasks over ${types.length} instance types (${Math.ceil(N / types.length)} per queue)${RUNS > 1 ? `, medians of ${RUNS} runs` : ''}`);
  console.log(`gq submit (subprocess)      ${secs(gqMs)}`);
  console.log(`bare baseline (subprocess)  ${secs(baseMs)}`);
  console.log(`ratio gq / baseline:        ${ratio.toFixed(2)}  (target ≤ 1.2)`);
}

/** The baseline's table and queues (untimed). */
async function baselineResources(endpoint, r, types) {
  const table = `bench-baseline-${r}-${process.pid}`;
  const ddb = new DynamoDBClient({ region: REGION, endpoint, credentials: creds });
  await ddb.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  ddb.destroy();
  const sqs = new SQSClient({ region: REGION, endpoint, credentials: creds, useQueueUrlAsEndpoint: false });
  const queues = {};
  for (const t of types) queues[t] = (await sqs.send(new CreateQueueCommand({ QueueName: `bench-baseline-${r}-${t.replace('.', '_')}` }))).QueueUrl;
  sqs.destroy();
  return { table, queues };
}

// ---------------------------------------------------------------------------------------------

const moto = await startMoto();
const work = mkdtempSync(join(tmpdir(), 'gq-bench-submit-'));
try {
  const ami = await x86Ami(moto.endpoint);
  if (ONLY !== 'calls') {
    console.log('== gq submit against a bare baseline, on moto ==\n');
    await benchSubmit(moto, work, ami);
  }
  if (ONLY !== 'submit') {
    const { benchCalls } = await import('./calls.mjs');
    console.log('\n== AWS calls per task over a whole job, on moto ==\n');
    await benchCalls({ moto, work, ami, tasks: CALLS_N, types: ALL_TYPES.slice(0, CALLS_TYPES_N), gqEnv, run, GQ, setupStack, writeJob, codeDir });
  }
} finally {
  await moto.stop();
  rmSync(work, { recursive: true, force: true });
}
