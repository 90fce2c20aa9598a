#!/usr/bin/env node
// bench/fleet: what a job's fleet costs against the work it did, on moto with the instance runtime
// (test/support/instance-runtime.ts: instances boot from their real UserData and run the real
// agent bundle), with tasks of known durations, slow boots and uneven tasks.
//
// The job: `--short` tasks sleeping 3-6 s (cycling through --short-s) and `--long` tasks sleeping
// --long-s, one long task at the end of each stretch of short ones (the last row is long: the
// fleet ends waiting for it). An INSTALL.sh that takes --install seconds; instance number n waits
// the n-th of --boot seconds (cycling) before its UserData starts (EC2's pending time, a slow
// AMI). The job is submitted without --wait (no gq command runs during it: only the agents decide
// when an instance leaves) and watched straight on moto.
//
// Prints, per instance and in total (test/support/fleet-figures.ts does the arithmetic):
//  - paid instance-seconds: from launch (the runtime sees it InService) to leaving its group,
//    billed per second with a 60-second minimum as AWS bills Linux (--scale S: a second of this
//    run stands for S seconds, so the minimum is 60/S s here; default 1, literal);
//  - useful seconds: the tasks' attempts (claim to completion, as gq records them) plus each
//    instance's boot (launch to the install script's start) and install;
//  - the ratio paid ÷ useful (target ≤ 1.1) and the longest idle stretch of each instance, its
//    time without a task after its install (target ≤ idle period + 60 s).
// Exit status 1 when a target is missed.
//
//   node bench/fleet.mjs [--short 36] [--long 4] [--short-s 3,4,5,6] [--long-s 20] [--idle 5]
//                        [--max-instances 4] [--boot 0,4,8,12] [--install 3] [--scale 1] [--timeout 600]
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoStatusStore } from '@gq/common/aws/status-store/index';
import { REGION, startMoto } from './moto.mjs';
import { GQ, gqEnv, loadSupport, run, setupStack, stackOutputs, x86Ami } from './aws-job.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const list = (s) => String(s).split(',').map(Number);
const SHORT = Number(opt('short', 36));
const LONG = Number(opt('long', 4));
const SHORT_S = list(opt('short-s', '3,4,5,6'));
const LONG_S = Number(opt('long-s', 20));
const IDLE = Number(opt('idle', 5));
const MAX = Number(opt('max-instances', 4));
const BOOT = list(opt('boot', '0,4,8,12'));
const INSTALL = Number(opt('install', 3));
const SCALE = Number(opt('scale', 1));
const TIMEOUT_S = Number(opt('timeout', 600));
for (const [k, v] of Object.entries({ SHORT, LONG, LONG_S, IDLE, MAX, INSTALL, SCALE, TIMEOUT_S, ...SHORT_S, ...BOOT })) {
  if (!Number.isFinite(v) || v < 0) throw new Error(`bench/fleet: ${k} must be a number ≥ 0, got ${v}`);
}
if (SCALE <= 0 || MAX < 1 || SHORT + LONG < 1) throw new Error('bench/fleet: --scale > 0, --max-instances ≥ 1 and at least one task');

const TYPE = 't3.micro';
const JOB = 'fleet-bench';

/** Durations of the tasks, in job-file order: a long task closes each stretch of short ones. */
function durations() {
  const out = [];
  const every = LONG > 0 ? Math.ceil(SHORT / LONG) : Infinity;
  let s = 0;
  for (let l = 0; s < SHORT || l < LONG; ) {
    for (let k = 0; k < every && s < SHORT; k++) out.push(SHORT_S[s++ % SHORT_S.length]);
    if (l++ < LONG) out.push(LONG_S);
  }
  return out;
}

function writeJob(dir, marks) {
  const code = join(dir, 'code');
  mkdirSync(code, { recursive: true });
  // A task marks its start and end (the instance that ran it) and writes a one-row results file.
  writeFileSync(
    join(code, 'work.sh'),
    `#!/bin/sh\necho "$(date +%s%3N) task-start $GQ_INSTANCE $GQ_TASK" >> ${marks}\nsleep "$1"\n` +
      `echo "$(date +%s%3N) task-end $GQ_INSTANCE $GQ_TASK" >> ${marks}\nprintf 'task,seconds\\n%s,%s\\n' "$GQ_TASK" "$1" > results.csv\n`,
  );
  // The install marks its run with the emulated machine's id (the runtime's marker variable: id.token).
  const install = join(dir, 'INSTALL.sh');
  writeFileSync(
    install,
    `#!/bin/sh\necho "$(date +%s%3N) install-start \${GQ_RUNTIME_INSTANCE%%.*}" >> ${marks}\nsleep ${INSTALL}\n` +
      `echo "$(date +%s%3N) install-end \${GQ_RUNTIME_INSTANCE%%.*}" >> ${marks}\n`,
  );
  const ds = durations();
  const file = join(dir, 'jobs.csv');
  writeFileSync(file, ['instance_type,command', ...ds.map((d) => `${TYPE},sh work.sh ${d}`)].join('\n') + '\n');
  return { file, code, install, durations: ds };
}

const f1 = (n) => n.toFixed(1);

async function main() {
  const moto = await startMoto();
  const dir = mkdtempSync(join(tmpdir(), 'gq-bench-fleet-'));
  chmodSync(dir, 0o755);
  let runtime;
  let ddb;
  try {
    const ami = await x86Ami(moto.endpoint);
    const stack = `gq-fleet-${process.pid}`;
    const home = join(dir, 'home');
    const env = gqEnv(home, moto.endpoint, stack, ami, { GQ_MAX_INSTANCES: String(MAX), GQ_VISIBILITY: '30' });
    await setupStack(env);
    const { table } = await stackOutputs(moto.endpoint, stack);
    const marksDir = join(dir, 'marks');
    mkdirSync(marksDir, { mode: 0o1777 });
    chmodSync(marksDir, 0o1777); // the tasks run as the instances' task user
    const marks = join(marksDir, 'marks.log');
    writeFileSync(marks, '', { mode: 0o666 });
    chmodSync(marks, 0o666);
    const job = writeJob(dir, marks);

    const { startInstanceRuntime } = await loadSupport('instance-runtime');
    const { fleetFigures, parseMarks, attemptsOf } = await loadSupport('fleet-figures');
    runtime = await startInstanceRuntime({
      endpoint: moto.endpoint,
      region: REGION,
      rootDir: join(dir, 'instances'),
      groups: (g) => g.startsWith(`gq-${JOB}-`),
      bootDelayMs: (_id, n) => BOOT[n % BOOT.length] * 1000,
    });
    const t0 = Date.now();
    const sub = await run(
      process.execPath,
      [GQ, 'submit', job.file, '--code', job.code, '--install', job.install, '--name', JOB, '--idle', `${IDLE}s`, '--json'],
      env,
    );
    if (sub.code !== 0) throw new Error(`gq submit failed (exit ${sub.code}):\n${sub.stderr}`);

    ddb = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } }),
    );
    const store = new DynamoStatusStore(ddb, { table });
    const N = job.durations.length;
    const deadline = t0 + TIMEOUT_S * 1000;
    for (;;) {
      const c = (await store.getJob(JOB))?.counts;
      if (c && c.succeeded + c.failed + c.cancelled === N) break;
      if (Date.now() > deadline) throw new Error(`job not done in ${TIMEOUT_S} s: ${JSON.stringify(c)}\n${runtime.errors.join('\n')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const doneS = (Date.now() - t0) / 1000;
    await runtime.waitFor((is) => is.length > 0 && is.every((i) => i.terminated && !i.alive), Math.max(60_000, deadline - Date.now()));
    const goneS = (Date.now() - t0) / 1000;

    const m = parseMarks(readFileSync(marks, 'utf8'));
    const tasks = await store.listTasks(JOB);
    const failed = tasks.filter((t) => t.state !== 'SUCCEEDED');
    const attempts = attemptsOf(tasks, m);
    const instances = runtime.instances().map((i) => ({ id: i.id, launchedAt: i.launchedAt, leftAt: i.leftAt, ...m.installs.get(i.id) }));
    const f = fleetFigures(instances, attempts, SCALE);
    const commandS = [...m.tasks.values()].reduce((s, t) => s + (t.end - t.start), 0) / 1000;

    const longs = job.durations.filter((d) => d === LONG_S).length;
    console.log(
      `${N} tasks (${N - longs} short of ${SHORT_S.join('/')} s, ${longs} long of ${LONG_S} s; ${job.durations.reduce((a, b) => a + b, 0)} s of sleep), ` +
        `--idle ${IDLE}s, at most ${MAX} instances, boot delays ${BOOT.join('/')} s, INSTALL.sh ${INSTALL} s, billing scale ${SCALE}`,
    );
    console.log(`job done ${f1(doneS)} s after submit; every instance gone after ${f1(goneS)} s; ${failed.length} task(s) not succeeded\n`);
    console.log('  instance              boot  install  tasks   busy   paid  longest idle');
    for (const i of f.instances) {
      console.log(
        `  ${i.id.padEnd(20)} ${f1(i.boot).padStart(5)} ${f1(i.install).padStart(8)} ${String(i.tasks).padStart(6)} ${f1(i.busy).padStart(6)} ${f1(i.paid).padStart(6)} ${f1(i.longestIdle).padStart(13)}`,
      );
    }
    console.log(
      `\n  paid ${f1(f.paid)} s; tasks ${f1(f.taskTime)} s (their commands ${f1(commandS)} s: agent overhead ${f1((f.taskTime - commandS) / Math.max(1, attempts.length))} s a task); boot and install ${f1(f.bootAndInstall)} s`,
    );
    const w = f.waste;
    console.log(
      `  paid over useful ${f1(f.paid - f.taskTime - f.bootAndInstall)} s: idle after each instance's last task ${f1(w.idleAtEnd)} s ` +
        `(the idle period alone: ${f.instances.length} × ${IDLE} s = ${IDLE * f.instances.length} s), idle between tasks ${f1(w.idleBetween)} s, ` +
        `billing rounding up ${f1(w.rounding)} s`,
    );
    const idleBound = IDLE + 60;
    const ratioOk = f.ratio <= 1.1;
    const idleOk = f.longestIdle <= idleBound;
    console.log(`paid ÷ (tasks + boot and install): ${f.ratio.toFixed(3)}  (target ≤ 1.1) ${ratioOk ? 'ok' : 'MISSED'}`);
    console.log(
      `longest idle stretch: ${f1(f.longestIdle)} s, idle period ${IDLE} s  (target ≤ ${idleBound} s) ${idleOk ? 'ok' : 'MISSED'}`,
    );
    if (!ratioOk || !idleOk || failed.length > 0) process.exitCode = 1;
  } finally {
    await runtime?.stop().catch((e) => console.error(String(e)));
    ddb?.destroy();
    await moto.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
