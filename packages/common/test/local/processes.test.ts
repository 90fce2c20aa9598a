/**
 * Several OS processes on one gq.db: three worker processes run the real queue + status code
 * (bundled from source with esbuild, since dist/ may be stale) and pull the same job's tasks, while
 * a fourth hammers the write lock with raw SQL. No task may be delivered or claimed twice, the
 * counters must match, and no process may see SQLITE_BUSY.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalBackend, processAlive, type LocalBackend } from '../../src/local/index.js';
import { makeSpec, makeTasks } from '../contract/status.contract.js';
import { tempHome } from './helpers.js';

const dir = tempHome('procs');
const require = createRequire(import.meta.url);
const sqliteUrl = pathToFileURL(require.resolve('better-sqlite3')).href;
const bundle = join(dir.home, 'local-backend.mjs');
const children = new Set<number>();
let backend: LocalBackend;

const WORKER = `
const [bundleUrl, home, job, type, id] = process.argv.slice(2);
const m = await import(bundleUrl);
const db = m.openDb(home);
const queues = new m.LocalQueueProvider(db);
const status = new m.LocalStatusStore(db);
const q = await queues.open(job, type);
// Start together: the first process up could otherwise drain the queue alone before the others
// have loaded (the assertion below needs several claimers).
const fs = await import('node:fs');
fs.writeFileSync(home + '/ready-' + id, '');
for (const until = Date.now() + 20000; Date.now() < until && fs.readdirSync(home).filter((f) => f.startsWith('ready-')).length < 3; ) {
  await new Promise((r) => setTimeout(r, 10));
}
const claimed = [], redelivered = [];
for (let empty = 0; empty < 3; ) {
  const msgs = await q.receive({ max: 10, waitSeconds: 0.3, visibilitySeconds: 120 });
  if (msgs.length === 0) { empty++; continue; }
  empty = 0;
  for (const msg of msgs) {
    if (msg.receiveCount !== 1) redelivered.push(msg.task);
    const c = await status.claim(job, msg.task, id, 120000);
    if (c.kind === 'claimed') {
      claimed.push(msg.task);
      if ((await status.heartbeat(job, msg.task, id, 120000)) !== 'ok') throw new Error('heartbeat lost');
      await q.extend(msg.receipt, 120);
      await status.setTag(job, msg.task, 'worker', id);
      const r = await status.complete(job, msg.task, id, { kind: 'succeeded', exitCode: 0 });
      if (r.kind !== 'recorded') throw new Error('complete lost');
    }
    await q.delete(msg.receipt);
  }
}
db.close();
process.stdout.write(JSON.stringify({ claimed, redelivered }));
`;

/** Takes the write lock over and over with raw SQL (like a busy \`gq\` CLI). */
const HAMMER = `
import Database from ${JSON.stringify(sqliteUrl)};
const [home, ms] = process.argv.slice(2);
const db = new Database(home + '/gq.db', { timeout: 30000 });
db.pragma('journal_mode = WAL');
db.exec('CREATE TABLE IF NOT EXISTS hammer (n INTEGER)');
const ins = db.prepare('INSERT INTO hammer (n) VALUES (?)');
const tx = db.transaction((n) => { for (let i = 0; i < 50; i++) ins.run(n); });
const end = Date.now() + Number(ms);
let n = 0;
while (Date.now() < end) { tx.immediate(n++); await new Promise((r) => setTimeout(r, 2)); }
db.close();
process.stdout.write(JSON.stringify({ n }));
`;

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) children.add(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

beforeAll(async () => {
  const entry = fileURLToPath(new URL('../../src/local/index.ts', import.meta.url));
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    logLevel: 'silent',
    plugins: [
      {
        name: 'native-sqlite',
        setup(b) {
          b.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: sqliteUrl, external: true }));
        },
      },
    ],
  });
  writeFileSync(join(dir.home, 'worker.mjs'), WORKER);
  writeFileSync(join(dir.home, 'hammer.mjs'), HAMMER);
  backend = openLocalBackend({ home: dir.home });
});

afterAll(async () => {
  for (const pid of children) {
    if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  for (const pid of children) expect(processAlive(pid)).toBe(false);
  await backend?.close();
  dir.remove();
});

describe('several processes on one database', () => {
  it('3 worker processes + a lock hammer: every task claimed exactly once, no SQLITE_BUSY', async () => {
    const job = 'multi-proc';
    const total = 900;
    await backend.status.createJob(makeSpec(job, total), makeTasks(total));
    const q = await backend.queues.ensure(job, 'test.small', { visibilitySeconds: 120, maxReceiveCount: 5 });
    await q.send(Array.from({ length: total }, (_, i) => i + 1));

    const t0 = performance.now();
    const hammer = run([join(dir.home, 'hammer.mjs'), dir.home, '1500']);
    const workers = ['w1', 'w2', 'w3'].map((id) =>
      run([join(dir.home, 'worker.mjs'), pathToFileURL(bundle).href, dir.home, job, 'test.small', id]),
    );
    const results = await Promise.all(workers);
    const ms = performance.now() - t0;
    const h = await hammer;

    for (const r of [...results, h]) {
      expect(r.err).not.toMatch(/SQLITE_BUSY|database is locked/);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
    }
    expect(JSON.parse(h.out).n).toBeGreaterThan(10);
    const outs = results.map((r) => JSON.parse(r.out) as { claimed: number[]; redelivered: number[] });
    const claimed = outs.flatMap((o) => o.claimed);
    console.log(
      `900 tasks through 3 processes in ${ms.toFixed(0)} ms (incl. ~1 s idle exit); per worker: ${outs.map((o) => o.claimed.length).join(', ')}`,
    );
    expect(outs.flatMap((o) => o.redelivered)).toEqual([]);
    expect(claimed).toHaveLength(total);
    expect(new Set(claimed).size).toBe(total);
    expect(outs.filter((o) => o.claimed.length > 0).length).toBeGreaterThan(1);

    const rec = await backend.status.getJob(job);
    expect(rec!.counts).toEqual({ queued: 0, running: 0, succeeded: total, failed: 0, cancelled: 0 });
    expect(backend.status.countTasksByState(job)).toEqual(rec!.counts);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    const t = await backend.status.getTask(job, 17);
    expect(['w1', 'w2', 'w3']).toContain(t!.tags.worker);
  });
});
