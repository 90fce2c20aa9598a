#!/usr/bin/env node
// bench/local: 2,000 trivial tasks (`true`) on the local backend with 2 workers, beside the same
// 2,000 commands through `xargs -P 2` (and GNU parallel where installed), in the same run.
// Prints wall times and ratios. Target: gq ≤ 1.5 × xargs -P 2, and faster than GNU parallel.
//   node bench/local.mjs [--tasks 2000] [--workers 2]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('tasks', 2000);
const P = arg('workers', 2);
const root = resolve(import.meta.dirname, '..');
const gq = join(root, 'packages', 'cli', 'bin', 'gq.js');
const work = mkdtempSync(join(tmpdir(), 'gq-bench-'));
const cmds = join(work, 'cmds.txt');
writeFileSync(cmds, Array.from({ length: N }, () => 'true').join('\n') + '\n');
const jobfile = join(work, 'jobs.csv');
writeFileSync(jobfile, 'instance_type,command\n' + Array.from({ length: N }, () => 'local,true').join('\n') + '\n');
const code = join(work, 'code');
execFileSync('mkdir', ['-p', code]);

function time(label, fn) {
  const t0 = process.hrtime.bigint();
  fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`${label.padEnd(28)} ${(ms / 1000).toFixed(2)} s`);
  return ms;
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

const xargs = time(`xargs -P ${P} (bash -c)`, () => {
  const r = spawnSync('sh', ['-c', `xargs -d '\\n' -P ${P} -n 1 bash -c < ${cmds}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('xargs failed');
});
let parallel;
if (has('parallel')) {
  parallel = time(`GNU parallel -j ${P}`, () => {
    const r = spawnSync('sh', ['-c', `parallel -j ${P} < ${cmds}`], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('parallel failed');
  });
} else console.log('GNU parallel               not installed: skipped');

const env = { ...process.env, GQ_HOME: join(work, 'gq'), GQ_CONFIG: join(work, 'none.json'), GQ_IDLE: '1' };
const gqMs = time(`gq local, ${P} workers`, () => {
  const r = spawnSync(process.execPath, [gq, 'submit', jobfile, '--code', code, '--name', 'bench', '--workers', String(P), '--wait', '--json'], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gq failed: ${r.stderr}`);
  const s = JSON.parse(r.stdout);
  if (s.counts.succeeded !== N) throw new Error(`only ${s.counts.succeeded} of ${N} succeeded`);
});

console.log(`\nratio gq / xargs -P ${P}:     ${(gqMs / xargs).toFixed(2)}  (target ≤ 1.5)`);
if (parallel) console.log(`ratio gq / GNU parallel:    ${(gqMs / parallel).toFixed(2)}  (target < 1)`);
rmSync(work, { recursive: true, force: true });
