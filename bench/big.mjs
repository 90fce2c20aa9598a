#!/usr/bin/env node
// bench/big: a 100,000-row job on the local backend with 2 workers, each row a trivial command
// that writes a one-row results file (every 100th row fails: `exit 1`, with --retries 0). Measures the wall time
// and peak RSS (of the gq process itself: bench/peak-rss.mjs) of each step:
//   gq submit (validation and enqueue), gq status NAME (while running, and after),
//   gq status NAME --tasks --json (to a file), gq results NAME (the small files merged),
//   gq retry NAME --failed (the failed rows, 1,000 of 100,000),
// beside the time `xargs -P 2` takes to run the same commands (target: no step over 2 × xargs).
// The same at --compare tasks (default a tenth) gives the RSS ratio per step: memory must not
// grow with the number of tasks beyond the job file itself.
//   node bench/big.mjs [--tasks 100000] [--workers 2] [--fail-every 100] [--compare 10000, 0: none] [--keep]
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { measure } from './peak-rss.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('tasks', 100_000);
const P = arg('workers', 2);
const FAIL_EVERY = arg('fail-every', 100);
const COMPARE = arg('compare', Math.round(N / 10));
const KEEP = process.argv.includes('--keep');
const TARGET = 2;
const root = resolve(import.meta.dirname, '..');
const gq = join(root, 'packages', 'cli', 'bin', 'gq.js');
const { openLocalBackend } = await import(join(root, 'packages', 'common', 'dist', 'local', 'index.js'));

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Row i's command: a one-row results file, or (every FAIL_EVERY-th row) a failure. */
const command = (i) => (i % FAIL_EVERY === 0 ? 'exit 1' : `printf 'n\\n${i}\\n' > results.csv`);

/** Wait until the job has nothing queued or running (read from the store: no gq process). */
async function finished(home, name, timeoutMs) {
  const b = openLocalBackend({ home, agentCommand: [] });
  try {
    for (const until = Date.now() + timeoutMs; ; await sleep(1000)) {
      const j = await b.status.getJob(name);
      if (j && j.counts.queued + j.counts.running === 0 && j.counts.succeeded + j.counts.failed + j.counts.cancelled >= j.total) return j;
      if (Date.now() > until) throw new Error(`job ${name} not finished after ${timeoutMs / 1000} s: ${JSON.stringify(j?.counts)}`);
    }
  } finally {
    await b.close();
  }
}

/** Wait (a while) for the job's workers to leave, so that the next step does not share the cores with them. */
async function workersGone(home, name) {
  const b = openLocalBackend({ home, agentCommand: [] });
  try {
    for (let k = 0; k < 60; k++) {
      const live = (await b.status.listInstances(name)).filter((i) => i.state !== 'STOPPED' && i.pid && alive(i.pid));
      if (live.length === 0) return;
      await sleep(500);
    }
  } finally {
    await b.close();
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One size: every step measured. Returns { xargs, steps: [{ step, s, mb }] }. */
async function run(n) {
  const work = mkdtempSync(join(process.env.GQ_BENCH_TMP ?? tmpdir(), 'gq-bench-big-'));
  const home = join(work, 'gq');
  const env = { ...process.env, GQ_HOME: home, GQ_CONFIG: join(work, 'none.json'), GQ_BACKEND: 'local', GQ_IDLE: '1' };
  const gqRun = (args, o = {}) => measure(process.execPath, [gq, ...args], { env, ...o });
  const steps = [];
  const step = (name, r) => {
    steps.push({ step: name, s: r.s, mb: r.mb });
    console.log(`  ${name.padEnd(34)} ${r.s.toFixed(2).padStart(8)} s  ${r.mb.toFixed(0).padStart(5)} MB`);
  };
  try {
    const lines = Array.from({ length: n }, (_, k) => command(k + 1));
    writeFileSync(join(work, 'cmds.txt'), lines.join('\n') + '\n');
    writeFileSync(join(work, 'jobs.csv'), 'instance_type,command\n' + lines.map((c) => `local,"${c.replace(/"/g, '""')}"`).join('\n') + '\n');
    const failing = Math.floor(n / FAIL_EVERY);
    const jobMb = statSync(join(work, 'jobs.csv')).size / 1048576;
    mkdirSync(join(work, 'code'));
    mkdirSync(join(work, 'xargs'));
    console.log(`\n${n} tasks (${failing} fail), ${P} workers; job file ${jobMb.toFixed(1)} MB; load average ${load()}`);

    // The baseline: the same commands through xargs (exit 123: some of them failed, as they should).
    const x = await measure('sh', ['-c', `cd ${join(work, 'xargs')} && xargs -d '\\n' -P ${P} -n 1 bash -c < ${join(work, 'cmds.txt')}`], { env, okCodes: [0, 123] });
    console.log(`  ${`xargs -P ${P} (same ${n} commands)`.padEnd(34)} ${x.s.toFixed(2).padStart(8)} s  ${x.mb.toFixed(0).padStart(5)} MB`);

    const t0 = Date.now();
    step('gq submit', await gqRun(['submit', join(work, 'jobs.csv'), '--code', join(work, 'code'), '--name', 'big', '--workers', String(P), '--retries', '0', '--json']));
    step('gq status (running)', await gqRun(['status', 'big']));
    const job = await finished(home, 'big', 3_600_000);
    const runS = (Date.now() - t0) / 1000;
    console.log(`  ${'(gq runs the job: submit to done)'.padEnd(34)} ${runS.toFixed(2).padStart(8)} s         ${(runS / x.s).toFixed(2)} × xargs`);
    if (job.counts.failed !== failing || job.counts.succeeded !== n - failing) throw new Error(`unexpected counts ${JSON.stringify(job.counts)}`);
    await workersGone(home, 'big');
    step('gq status (done)', await gqRun(['status', 'big']));
    const tasksFile = join(work, 'tasks.json');
    const fd = openSync(tasksFile, 'w');
    try {
      step('gq status --tasks --json', await gqRun(['status', 'big', '--tasks', '--json'], { stdout: fd }));
    } finally {
      closeSync(fd);
    }
    const listed = JSON.parse(readFileSync(tasksFile, 'utf8')).tasks;
    if (listed.length !== n) throw new Error(`--tasks --json listed ${listed.length} of ${n} tasks`);
    step('gq results', await gqRun(['results', 'big', '--out', join(work, 'out')]));
    const merged = readFileSync(join(work, 'out', 'results.csv'), 'utf8').split('\n').filter(Boolean).length - 1;
    if (merged !== n - failing) throw new Error(`results.csv has ${merged} rows, not ${n - failing}`);
    rmSync(join(work, 'out'), { recursive: true, force: true });
    step(`gq retry --failed (${failing})`, await gqRun(['retry', 'big', '--failed', '--json']));
    const t1 = Date.now();
    const again = await finished(home, 'big', 600_000);
    console.log(`  ${'(the retried tasks run)'.padEnd(34)} ${((Date.now() - t1) / 1000).toFixed(2).padStart(8)} s`);
    if (again.counts.failed !== failing) throw new Error(`after the retry: ${JSON.stringify(again.counts)}`);
    await workersGone(home, 'big');
    return { xargs: x.s, steps };
  } finally {
    if (KEEP) console.log(`  kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

if (spawnSync('sh', ['-c', 'command -v xargs']).status !== 0) throw new Error('bench/big needs xargs');
console.log(`bench/big: load average at start ${load()} (1, 5, 15 min)`);
const big = await run(N);
const small = COMPARE > 0 ? await run(COMPARE) : undefined;

console.log(`\n${'step'.padEnd(30)} ${`${N} tasks`.padStart(10)} ${'RSS'.padStart(8)} ${'× xargs'.padStart(8)}${small ? `  ${`RSS ${N}/${COMPARE}`.padStart(16)}` : ''}`);
let over = 0;
for (const [k, st] of big.steps.entries()) {
  const ratio = st.s / big.xargs;
  if (ratio > TARGET) over++;
  const rss = small ? `  ${(st.mb / small.steps[k].mb).toFixed(2).padStart(16)}` : '';
  console.log(`${st.step.padEnd(30)} ${`${st.s.toFixed(2)} s`.padStart(10)} ${`${st.mb.toFixed(0)} MB`.padStart(8)} ${ratio.toFixed(2).padStart(8)}${rss}`);
}
console.log(`${`xargs -P ${P}`.padEnd(30)} ${`${big.xargs.toFixed(2)} s`.padStart(10)}`);
console.log(`\ntarget: every step ≤ ${TARGET} × xargs: ${over ? `${over} step(s) OVER` : 'OK'}; load average at the end ${load()}`);
if (over) process.exitCode = 1;
