#!/usr/bin/env node
// bench/results-memory: peak memory (max RSS) of `gq results` on the local backend, beside
// baselines measured in the same run on the same file: `cat` of it and a plain Node streaming copy.
//  - large: one task whose results file is --mb MB (default 500), made by the task itself (a copy
//    of a file this script writes: 5 columns, quoted fields with commas, quotes and UTF-8);
//  - small (optional, --small N): a job of N tasks with a one-row results file each, recorded
//    through the local backend's own API (running 100,000 real tasks would take long).
// Target: gq results under 300 MB whatever the size or number of the files (aim: about 150 MB,
// which is Node and gq's modules, about 75 MB, plus the garbage collector's working room).
// The peak RSS of each gq results run is that of its own process (GNU time's maximum resident set
// size, or the highest VmHWM read from /proc), printed beside the target. With --keep the work
// folder stays and the commands to run again by hand are printed.
//   node bench/results-memory.mjs [--mb 500] [--small 0] [--keep]
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { measure } from './peak-rss.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const MB = arg('mb', 500);
const SMALL = arg('small', 0);
const KEEP = process.argv.includes('--keep');
const LIMIT_MB = 300;
const AIM_MB = 150;
const root = resolve(import.meta.dirname, '..');
const gq = join(root, 'packages', 'cli', 'bin', 'gq.js');
const work = mkdtempSync(join(process.env.GQ_BENCH_TMP ?? tmpdir(), 'gq-bench-results-'));
const env = { ...process.env, GQ_HOME: join(work, 'gq'), GQ_CONFIG: join(work, 'none.json'), GQ_BACKEND: 'local', GQ_IDLE: '1' };
/** Run a command and print and return its peak RSS in MB (bench/peak-rss.mjs). */
async function peakRss(label, cmd, args, opts = {}) {
  const { mb, s } = await measure(cmd, args, { env, ...opts });
  console.log(`${label.padEnd(44)} peak RSS ${mb.toFixed(0).padStart(6)} MB   ${s.toFixed(1).padStart(6)} s`);
  return mb;
}

/** A results CSV of about `mb` MB: fields with commas, quotes, newlines and UTF-8, as real results have. */
async function writeBig(file, mb) {
  const out = createWriteStream(file);
  out.write('run,objective,gap,status,note\n');
  const target = mb * 1024 * 1024;
  let bytes = 0;
  let i = 0;
  while (bytes < target) {
    let chunk = '';
    for (let k = 0; k < 10_000; k++, i++) {
      chunk += `${i},${(i * 1.618).toFixed(6)},${(i % 997) / 1000},optimal,"seed ${i % 31}, ""warm"" start — ü"\n`;
    }
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function gqSync(args) {
  return execFileSync(process.execPath, [gq, ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** Streaming copy in plain Node: what any Node process that streams the file costs. */
const NODE_COPY = `
const { createReadStream, createWriteStream } = require('node:fs');
const { pipeline } = require('node:stream/promises');
pipeline(createReadStream(process.argv[1]), createWriteStream(process.argv[2]));
`;

const results = [];
/** [job, out folder] of each gq results run, to print for running again by hand (--keep). */
const rerun = [];
try {
  console.log(`bench/results-memory: ${MB} MB results file of one task${SMALL ? `, and ${SMALL} one-row results files` : ''}; limit ${LIMIT_MB} MB\n`);
  if (MB > 0) {
    const big = join(work, 'big.csv');
    await writeBig(big, MB);
    const size = statSync(big).size;
    const code = join(work, 'code');
    mkdirSync(code);
    writeFileSync(join(work, 'jobs.csv'), `instance_type,command\nlocal,cp ${big} results.csv\n`);
    gqSync(['submit', join(work, 'jobs.csv'), '--code', code, '--name', 'big', '--workers', '1', '--wait', '--json']);
    await peakRss(`cat (${(size / 1048576).toFixed(0)} MB file)`, 'sh', ['-c', `cat ${big} > ${join(work, 'cat.out')}`]);
    await peakRss('node streaming copy', process.execPath, ['-e', NODE_COPY, big, join(work, 'copy.out')]);
    rmSync(join(work, 'cat.out'), { force: true });
    rmSync(join(work, 'copy.out'), { force: true });
    const gqMb = await peakRss('gq results (one large file)', process.execPath, [gq, 'results', 'big', '--out', join(work, 'out-big')]);
    rerun.push(['big', 'out-big']);
    const merged = statSync(join(work, 'out-big', 'results.csv')).size;
    console.log(`  merged results.csv: ${(merged / 1048576).toFixed(0)} MB`);
    results.push({ what: `one ${MB} MB`, mb: gqMb });
    rmSync(join(work, 'out-big'), { recursive: true, force: true });
  }
  if (SMALL > 0) {
    const { openLocalBackend } = await import(join(root, 'packages', 'common', 'dist', 'local', 'index.js'));
    const b = openLocalBackend({ home: env.GQ_HOME, agentCommand: [] });
    const type = 'local';
    const now = new Date().toISOString();
    const spec = {
      name: 'small', backend: 'local', createdAt: now, total: SMALL, instanceTypes: { [type]: SMALL },
      codeKey: 'bundles/none.tar.gz', resultsPath: 'results.csv', outputs: [], maxAttempts: 1, timeoutSeconds: 0,
      installTimeoutSeconds: 60, installAttempts: 1, visibilitySeconds: 60, idleSeconds: 1,
    };
    const tasks = Array.from({ length: SMALL }, (_, i) => ({ task: i + 1, instanceType: type, command: 'true' }));
    await b.status.createJob(spec, tasks);
    for (const t of tasks) {
      const key = `jobs/small/tasks/${t.task}/files/results.csv`;
      await b.artifacts.putBytes(key, `run,objective,note\n${t.task},${t.task * 2},"a, b"\n`);
      await b.status.claim('small', t.task, 'bench', 60_000);
      await b.status.complete('small', t.task, 'bench', { kind: 'succeeded', exitCode: 0, resultKey: key });
    }
    await b.close();
    const gqMb = await peakRss(`gq results (${SMALL} small files)`, process.execPath, [gq, 'results', 'small', '--out', join(work, 'out-small')]);
    results.push({ what: `${SMALL} small`, mb: gqMb });
    rerun.push(['small', 'out-small']);
  }
  console.log('');
  for (const r of results) {
    const ok = r.mb < LIMIT_MB;
    console.log(`${(r.what + ' file(s):').padEnd(22)} gq results peak RSS ${r.mb.toFixed(0).padStart(4)} MB   target < ${LIMIT_MB} MB ${ok ? 'OK' : 'OVER'}   (aim ~${AIM_MB} MB)`);
  }
  if (results.some((r) => r.mb >= LIMIT_MB)) process.exitCode = 1;
} finally {
  if (KEEP) {
    console.log(`kept ${work}; to run again by hand:`);
    const envs = `GQ_HOME=${env.GQ_HOME} GQ_CONFIG=${env.GQ_CONFIG} GQ_BACKEND=local`;
    for (const [job, dir] of rerun) console.log(`  rm -rf ${join(work, dir)}; ${envs} /usr/bin/time -v node ${gq} results ${job} --out ${join(work, dir)}`);
  }
  else rmSync(work, { recursive: true, force: true });
}
