#!/usr/bin/env node
// bench/local: gq's local backend beside `xargs -P` and GNU parallel, in the same run, on the
// same commands, for three workloads: 1,000 and 10,000 trivial tasks (`true`) and 200 tasks of
// 50 ms (`sleep 0.05`). Every tool is handed each command as a `bash -c` command line, with P
// workers (default 2); gq's agent runs a plain command like these without bash when bash would only
// exec it (agent/src/direct-exec.ts), as the native spawn floor below does.
//
//   node bench/local.mjs [--workers 2] [--runs 1] [--only 1000,10000,200x50ms] [--compare DIR]
//
// --compare DIR: also run the gq of another built checkout (e.g. an older commit), in the same
// run, for before/after figures under the same load.
//
// Wall time: from the start of the command to its end. For gq that is one
// `gq submit JOBFILE --code EMPTY_DIR --workers P --wait --json`: the CLI's start, parsing and
// checking the job file, the code bundle, the job and its tasks in SQLite, the enqueue, starting
// the P worker processes, running every task (claim, fresh folder, run, log, results, complete,
// delete), and the --wait's last look at the counters; not the workers' idle period after the
// last task (--wait returns as soon as every task is final).
// gq's phases are read from its store afterwards: "start" = submit start to the first task's
// start, "run" = first start to last finish, "tail" = last finish to the end of --wait.
//
// Per-task overhead, ms = (wall − ideal) / tasks × workers, ideal = tasks × task time / workers:
// what each task costs a worker beyond its own run time (for `true`, its run time is 0, so the
// fork/exec of bash is part of the overhead of every tool).
// CPU ms/task = CPU time (user + system) of the tool and everything it ran, / tasks: for xargs and
// parallel from the rusage of their waited children, for gq the CLI's the same way plus what each
// worker reports on leaving (its own and its tasks'; run.ts). The machine's other load changes it
// far less than the wall time, so compare these when the load average is high.
//
// "node spawn floor": a bare Node script that only runs the commands, P at a time, with
// child_process (bash -c, own process group, stdout to a file, stderr through a pipe), with no
// bookkeeping at all: the least an agent that forks can take on this machine.
// "native spawn floor": the same with the agent's native spawner (@gq/spawn: posix_spawn, a plain
// command run without bash as the agent runs it: direct-exec.ts), the floor of gq's design.
//
// Targets (issue 12): 1,000 trivial tasks on 2 workers in at most 1.5 × the time of xargs -P 2,
// and faster than GNU parallel -j 2.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const argOf = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const P = Number(argOf('workers', '2'));
const RUNS = Number(argOf('runs', '1'));
const ALL = [
  { name: '1000', tasks: 1000, command: 'true', taskMs: 0 },
  { name: '10000', tasks: 10000, command: 'true', taskMs: 0 },
  { name: '200x50ms', tasks: 200, command: 'sleep 0.05', taskMs: 50 },
];
const only = argOf('only', undefined)?.split(',');
const workloads = ALL.filter((w) => !only || only.includes(w.name));

const root = resolve(import.meta.dirname, '..');
const gqOf = (dir) => join(dir, 'packages', 'cli', 'bin', 'gq.js');
const compare = argOf('compare', undefined);
const { openDb } = await import(join(root, 'packages', 'common', 'dist', 'local', 'index.js'));
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const hasParallel = has('parallel');

function timed(fn) {
  const t0 = Date.now();
  const extra = fn();
  return { ms: Date.now() - t0, ...extra };
}

/** The node spawn floor (see the header): argv = commands file, lanes. */
const FLOOR = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const cmds = fs.readFileSync(process.argv[2], 'utf8').split('\\n').filter(Boolean);
const log = fs.openSync(process.argv[2] + '.log', 'a');
let next = 0;
const lane = () => new Promise((done) => {
  const one = () => {
    if (next >= cmds.length) return done();
    const c = spawn('bash', ['-c', cmds[next++]], { detached: true, stdio: ['ignore', log, 'pipe'] });
    c.stderr.on('data', () => {});
    c.on('close', one);
  };
  one();
});
Promise.all(Array.from({ length: Number(process.argv[3]) }, lane));
`;

/** The native spawn floor (see the header): argv = commands file, lanes, the addon's path. */
const NATIVE_FLOOR = `
const a = require(process.argv[4]);
const fs = require('node:fs');
const net = require('node:net');
const cmds = fs.readFileSync(process.argv[2], 'utf8').split('\\n').filter(Boolean);
const log = fs.openSync(process.argv[2] + '.native.log', 'a');
const env = Object.entries(process.env).map(([k, v]) => k + '=' + v);
const which = (name) => process.env.PATH.split(':').map((d) => d + '/' + name).find((f) => { try { fs.accessSync(f, fs.constants.X_OK); return fs.statSync(f).isFile(); } catch { return false; } });
const pending = new Map();
const reap = () => { for (const [pid, done] of pending) if (a.reap(pid)) { pending.delete(pid); done(); } };
process.on('SIGCHLD', reap);
const net1 = setInterval(reap, 1000);
let next = 0;
const lane = () => new Promise((done) => {
  const one = () => {
    if (next >= cmds.length) return done();
    const c = cmds[next++];
    const words = /^[A-Za-z0-9_.\\/ -]+$/.test(c) ? c.split(' ') : undefined;
    const file = words && which(words[0]);
    const [r, w] = a.pipe();
    const pid = file ? a.spawn(file, words, env, '/tmp', log, w) : a.spawn(which('bash'), ['bash', '-c', c], env, '/tmp', log, w);
    fs.closeSync(w);
    const s = new net.Socket({ fd: r, readable: true, writable: false });
    let n = 0;
    const both = () => { if (++n === 2) one(); };
    s.on('data', () => {});
    s.on('close', both);
    pending.set(pid, both);
  };
  one();
});
Promise.all(Array.from({ length: Number(process.argv[3]) }, lane)).then(() => clearInterval(net1));
`;
let nativeAddon;
try {
  nativeAddon = join(root, 'packages', 'spawn', 'build', 'Release', 'gq_spawn.node');
  readFileSync(nativeAddon);
} catch {
  nativeAddon = undefined;
}

/** CPU ms of the waited children of the shell that wrote `file` (/proc/<sh>/stat cutime + cstime, 100 ticks a second). */
function childCpu(file) {
  const stat = readFileSync(file, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** Run `script` in sh; its CPU (and its children's) is returned. */
function sh(script, work) {
  const file = join(work, 'cpu.stat');
  const r = spawnSync('sh', ['-c', `${script}; s=$?; cat /proc/$$/stat > ${file}; exit $s`], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`failed: ${script}`);
  return { cpu: childCpu(file) };
}

/** The CPU the job's workers report when they leave (run.ts, "worker leaving"), waiting for them to. */
function workerCpu(home, workers) {
  const dir = join(home, 'logs', 'bench');
  const until = Date.now() + 30_000;
  for (;;) {
    const left = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8').split('\n').map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((l) => l.msg === 'worker leaving'));
    if (left.some((l) => l && !l.cpuMs)) return NaN; // a gq that does not report it (--compare)
    if (left.length >= workers && left.every(Boolean)) return left.reduce((n, l) => n + l.cpuMs.agent + (l.cpuMs.tasks ?? 0), 0);
    if (Date.now() > until) return NaN;
    execFileSync('sleep', ['0.2']);
  }
}

/** gq's phases from its store: first task start, last task finish (epoch ms). */
function phases(home) {
  const db = openDb(home);
  try {
    const r = db
      .prepare(`SELECT MIN(json_extract(record, '$.startedAt')) AS first, MAX(json_extract(record, '$.finishedAt')) AS last FROM tasks`)
      .get();
    return { first: Date.parse(r.first), last: Date.parse(r.last) };
  } finally {
    db.close();
  }
}

/** One `gq submit --wait` of the job file with the gq at `gq` (its bin script). */
function runGq(w, work, jobfile, gq) {
  const home = join(work, `gq-${w.name}-${Date.now()}`);
  const env = { ...process.env, GQ_HOME: home, GQ_CONFIG: join(work, 'none.json') };
  const t0 = Date.now();
  const t = (() => {
    const cpuFile = join(work, 'cpu.stat');
    const argv = [process.execPath, gq, 'submit', jobfile, '--code', join(work, 'code'), '--name', 'bench', '--workers', String(P), '--idle', '1', '--wait', '--json'];
    const r = spawnSync('sh', ['-c', `"$@"; s=$?; cat /proc/$$/stat > ${cpuFile}; exit $s`, 'sh', ...argv], { env, encoding: 'utf8' });
    const end = Date.now();
    if (r.status !== 0) throw new Error(`gq failed: ${r.stderr}`);
    const s = JSON.parse(r.stdout);
    if (s.counts.succeeded !== w.tasks) throw new Error(`gq: only ${s.counts.succeeded} of ${w.tasks} succeeded`);
    const p = phases(home);
    // The wall time ends with --wait; the workers' CPU is read after they left.
    return { ms: end - t0, phases: { start: p.first - t0, run: p.last - p.first, tail: end - p.last }, cpu: childCpu(cpuFile) + workerCpu(home, P) };
  })();
  rmSync(home, { recursive: true, force: true });
  return t;
}

function runOnce(w, work) {
  const cmds = join(work, `cmds-${w.name}.txt`);
  writeFileSync(cmds, `${Array.from({ length: w.tasks }, () => w.command).join('\n')}\n`);
  const jobfile = join(work, `jobs-${w.name}.csv`);
  writeFileSync(jobfile, `instance_type,command\n${Array.from({ length: w.tasks }, () => `local,${w.command}`).join('\n')}\n`);
  const out = {};
  out.xargs = timed(() => sh(`xargs -d '\\n' -P ${P} -n 1 bash -c < ${cmds}`, work));
  if (hasParallel) out.parallel = timed(() => sh(`parallel --will-cite -j ${P} < ${cmds}`, work));
  out.floor = timed(() => sh(`${process.execPath} ${join(work, 'floor.cjs')} ${cmds} ${P}`, work));
  if (nativeAddon) out.nativeFloor = timed(() => sh(`${process.execPath} ${join(work, 'native-floor.cjs')} ${cmds} ${P} ${nativeAddon}`, work));
  out.gq = runGq(w, work, jobfile, gqOf(root));
  if (compare) out.before = runGq(w, work, jobfile, gqOf(resolve(compare)));
  return out;
}

const overhead = (w, ms) => ((ms - (w.tasks * w.taskMs) / P) / w.tasks) * P;
const s2 = (ms) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

const work = mkdtempSync(join(tmpdir(), 'gq-bench-'));
mkdirSync(join(work, 'code'));
writeFileSync(join(work, 'floor.cjs'), FLOOR);
writeFileSync(join(work, 'native-floor.cjs'), NATIVE_FLOOR);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`bench/local: ${P} workers, ${RUNS} run(s) of each workload; load average ${load()}`);
if (!hasParallel) console.log('GNU parallel is not installed (Debian: apt-get install parallel): its column is skipped.');
const summary = [];
try {
  for (const w of workloads) {
    console.log(`\n${w.tasks} × \`${w.command}\`  (ideal ${s2((w.tasks * w.taskMs) / P)})`);
    console.log(`  ${'tool'.padEnd(20)} ${'wall'.padStart(8)} ${'ms/task'.padStart(8)} ${'CPU ms/task'.padStart(12)}   gq phases`);
    const ratios = { xargs: [], parallel: [], cpu: [] };
    for (let run = 0; run < RUNS; run++) {
      const r = runOnce(w, work);
      const row = (label, t) => console.log(`  ${label.padEnd(20)} ${s2(t.ms).padStart(8)} ${overhead(w, t.ms).toFixed(2).padStart(8)} ${(Number.isNaN(t.cpu) ? '-' : (t.cpu / w.tasks).toFixed(2)).padStart(12)}${t.phases ? `   start ${s2(t.phases.start)}, run ${s2(t.phases.run)}, tail ${s2(t.phases.tail)}` : ''}`);
      row(`xargs -P ${P}`, r.xargs);
      if (r.parallel) row(`GNU parallel -j ${P}`, r.parallel);
      row('node spawn floor', r.floor);
      if (r.nativeFloor) row('native spawn floor', r.nativeFloor);
      row(`gq, ${P} workers`, r.gq);
      if (r.before) row(`gq at --compare`, r.before);
      ratios.xargs.push(r.gq.ms / r.xargs.ms);
      ratios.cpu.push(r.gq.cpu / r.xargs.cpu);
      if (r.parallel) ratios.parallel.push(r.gq.ms / r.parallel.ms);
      const rp = r.parallel ? `, gq / parallel ${(r.gq.ms / r.parallel.ms).toFixed(2)}` : '';
      console.log(`  ratios: gq / xargs ${(r.gq.ms / r.xargs.ms).toFixed(2)}${rp}; CPU gq / xargs ${(r.gq.cpu / r.xargs.cpu).toFixed(2)}   (load ${load()})`);
    }
    summary.push({ w, xargs: median(ratios.xargs), cpu: median(ratios.cpu), parallel: ratios.parallel.length ? median(ratios.parallel) : undefined });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`\nMedian ratios${RUNS > 1 ? ` over ${RUNS} runs` : ''} (targets for 1,000 trivial tasks: gq / xargs ≤ 1.5, gq / parallel < 1):`);
for (const s of summary) {
  const ok = s.w.name === '1000' ? `  ${s.xargs <= 1.5 ? 'meets' : 'misses'} ≤ 1.5; ${s.parallel === undefined ? '' : s.parallel < 1 ? 'meets' : 'misses'} < 1` : '';
  console.log(`  ${`${s.w.tasks} × ${s.w.command}`.padEnd(20)} gq / xargs ${s.xargs.toFixed(2)}${s.parallel === undefined ? '' : `, gq / parallel ${s.parallel.toFixed(2)}`}; CPU gq / xargs ${s.cpu.toFixed(2)}${ok}`);
}
