#!/usr/bin/env node
// bench/jobfile: CPU time of gq's job-file parser (packages/common/dist: run `npm run build` first)
// beside csv-parse alone on the same bytes, in the same run (the timing bounds that were in
// packages/common/test/jobfile.test.ts, where a busy machine could fail them):
//  - 1,000,000 good rows (a 60 MB file), and a file of as many with one bad row (line 765432),
//    read by gq from disk;
//  - files that must stay linear: old-Mac (CR) line ends, rows without a comma, rows with one too
//    many (csv-parse alone builds an error for every row of another width than the first: see
//    readCsv in packages/common/src/job/jobfile/csv.ts), timed at N and 2N rows;
//  - a file over the size limit (sparse, 250 MiB), which must be refused before it is read.
// Each figure is the least of --runs runs. Targets, at the default --rows (fixed costs weigh more in
// small files): gq ≤ 2 × csv-parse alone; 2N rows ≤ 2.5 × N rows;
// the refusal under 1 s. Exit code 1 when one is missed.
//   node bench/jobfile.mjs [--rows 1000000] [--runs 3]
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROWS = arg('rows', 1_000_000);
const RUNS = arg('runs', 3);
const LINEAR_ROWS = Math.max(1000, Math.round(ROWS / 5));
const root = resolve(import.meta.dirname, '..');
const { JobFileError, MAX_JOB_FILE_BYTES, parseJobFile, parseJobText } = await import(join(root, 'packages', 'common', 'dist', 'index.js'));
const work = mkdtempSync(join(process.env.GQ_BENCH_TMP ?? tmpdir(), 'gq-bench-jobfile-'));
const H = 'instance_type,command\n';
let missed = 0;

/** The least CPU time (user + system, ms) and wall time of `runs` calls of fn. */
async function cpu(fn, runs = RUNS) {
  let best = { cpuMs: Infinity, wallMs: Infinity };
  for (let r = 0; r < runs; r++) {
    globalThis.gc?.();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    const wallMs = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const cpuMs = (c.user + c.system) / 1000;
    if (cpuMs < best.cpuMs) best = { cpuMs, wallMs };
  }
  return best;
}

const fmt = (ms) => `${ms.toFixed(0).padStart(6)} ms`;
function report(label, value, target, ok) {
  console.log(`${label.padEnd(58)} ${value}  (target ${target})${ok ? '' : '  MISSED'}`);
  if (!ok) missed++;
}

/** csv-parse alone, with the options gq gives it, over the whole file at once. */
const csvParseAlone = (buf) => parse(buf, { relax_quotes: true, relax_column_count: true, record_delimiter: ['\r\n', '\n', '\r'], skip_empty_lines: true, bom: true });

// 1. Large files, beside csv-parse alone.
const good = [H];
for (let i = 1; i <= ROWS; i++) good.push(`c5.xlarge,python run.py --seed ${i} --out out/${i}.json\n`);
const goodBuf = Buffer.from(good.join(''));
good.length = 0;
const badAt = Math.min(765_431, ROWS);
const bad = [H];
for (let i = 1; i <= ROWS; i++) bad.push(i === badAt ? 't3.micro,\n' : `t3.micro,python run.py --seed ${i}\n`);
const badPath = join(work, 'big-bad.csv');
writeFileSync(badPath, bad.join(''));
const badBuf = Buffer.from(bad.join(''));
bad.length = 0;

console.log(`${(goodBuf.length / 1e6).toFixed(0)} MB, ${ROWS.toLocaleString('en-US')} rows; least of ${RUNS} runs, CPU time\n`);
for (const [label, buf, run] of [
  [`${ROWS.toLocaleString('en-US')} good rows`, goodBuf, () => parseJobText(goodBuf, 'jobs.csv')],
  [
    `${ROWS.toLocaleString('en-US')} rows, one bad (line ${badAt + 1})`,
    badBuf,
    async () => {
      const err = await parseJobFile(badPath).catch((e) => e);
      if (!(err instanceof JobFileError) || err.problems[0]?.line !== badAt + 1) throw new Error(`expected the bad row at line ${badAt + 1}, got ${err}`);
    },
  ],
]) {
  const base = await cpu(() => csvParseAlone(buf));
  const gq = await cpu(run);
  console.log(`${`  csv-parse alone: ${label}`.padEnd(58)} ${fmt(base.cpuMs)}  (wall ${fmt(base.wallMs)})`);
  console.log(`${`  gq: ${label}`.padEnd(58)} ${fmt(gq.cpuMs)}  (wall ${fmt(gq.wallMs)})`);
  const ratio = gq.cpuMs / base.cpuMs;
  report(`ratio gq / csv-parse alone`, ratio.toFixed(2).padStart(9), '≤ 2', ratio <= 2);
}

// 2. Linear time where csv-parse alone is not: N and 2N rows.
console.log('');
const linear = [
  ['old-Mac (CR) line ends', (n) => `instance_type,command\r${Array.from({ length: n }, (_, i) => `t3.micro,echo ${i}`).join('\r')}`, true],
  ['rows without a comma', (n) => `${H}${'x\n'.repeat(n)}`, false],
  ['rows with one comma too many', (n) => `${H}${'t3.micro,echo a,b\n'.repeat(n)}`, false],
];
for (const [label, make, good] of linear) {
  const times = [];
  for (const n of [LINEAR_ROWS, 2 * LINEAR_ROWS]) {
    const text = make(n);
    const t = await cpu(() => {
      try {
        const tasks = parseJobText(text, 'jobs.csv');
        if (!good || tasks.length !== n) throw new Error(`${label}: ${tasks.length} tasks`);
      } catch (err) {
        if (good || !(err instanceof JobFileError) || err.problemCount !== n) throw err;
      }
    });
    times.push(t.cpuMs);
    console.log(`${`  gq: ${label}, ${n.toLocaleString('en-US')} rows`.padEnd(58)} ${fmt(t.cpuMs)}  (${((t.cpuMs * 1000) / n).toFixed(1)} µs a row)`);
  }
  const ratio = times[1] / times[0];
  report(`ratio 2N / N rows`, ratio.toFixed(2).padStart(9), '≤ 2.5', ratio <= 2.5);
}

// 3. A file over the limit is refused before it is read.
console.log('');
const huge = join(work, 'huge.csv');
writeFileSync(huge, H);
truncateSync(huge, MAX_JOB_FILE_BYTES + 50 * 1024 * 1024); // sparse: no disk used
const refusal = await cpu(async () => {
  const err = await parseJobFile(huge).catch((e) => e);
  if (!(err instanceof JobFileError) || err.problems[0]?.line !== 0) throw new Error(`expected a whole-file problem, got ${err}`);
});
report('gq: refuses a 250 MiB file (wall time)', `${refusal.wallMs.toFixed(1).padStart(6)} ms`, '< 1000 ms', refusal.wallMs < 1000);

rmSync(work, { recursive: true, force: true });
if (missed) {
  console.log(`\n${missed} target${missed === 1 ? '' : 's'} missed`);
  process.exitCode = 1;
}
