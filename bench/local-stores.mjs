#!/usr/bin/env node
// bench/local-stores: the speed of the local backend's queue and status store on big jobs, moved
// here from their unit tests (a busy machine failed them). Each figure is printed beside a
// baseline measured in the same run on the same disk: the same amount of work done with plain
// better-sqlite3 statements (no gq code), so that the ratio says what gq adds, whatever the machine.
//   npm run build && node bench/local-stores.mjs [--tasks 100000] [--rounds 200]
// Former test bars (absolute, on an idle machine): send 100k < 5 s, receive 10 + delete 10 < 20 ms,
// createJob 100k < 10 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('tasks', 100_000);
const ROUNDS = arg('rounds', 200);
const root = resolve(import.meta.dirname, '..');
const { openDb, LocalQueueProvider, LocalStatusStore } = await import(join(root, 'packages', 'common', 'dist', 'local', 'index.js'));
const work = mkdtempSync(join(tmpdir(), 'gq-bench-stores-'));
const TYPE = 'local';

async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// ---- baseline: plain better-sqlite3, WAL like gq's database
const raw = new Database(join(work, 'raw.db'));
raw.pragma('journal_mode = WAL');
raw.pragma('synchronous = NORMAL');
raw.exec(`CREATE TABLE m (id INTEGER PRIMARY KEY, task INTEGER NOT NULL, visible_at INTEGER NOT NULL, receipt TEXT);
          CREATE INDEX m_visible ON m (visible_at);
          CREATE TABLE t (job TEXT NOT NULL, task INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (job, task));`);
const ins = raw.prepare('INSERT INTO m (task, visible_at) VALUES (?, 0)');
const rawSend = await time(() => raw.transaction(() => { for (let i = 1; i <= N; i++) ins.run(i); })());
const pick = raw.prepare('SELECT id FROM m WHERE visible_at <= ? ORDER BY visible_at LIMIT 10');
const hide = raw.prepare('UPDATE m SET visible_at = ?, receipt = ? WHERE id = ?');
const del = raw.prepare('DELETE FROM m WHERE id = ?');
const rawRound = (await time(() => {
  for (let r = 0; r < ROUNDS; r++) {
    const now = Date.now();
    const ids = raw.transaction(() => pick.all(now).map((row) => (hide.run(now + 60_000, `r${row.id}`, row.id), row.id)))();
    for (const id of ids) del.run(id);
  }
})) / ROUNDS;
const insTask = raw.prepare('INSERT OR IGNORE INTO t (job, task, record) VALUES (?, ?, ?)');
const rawCreate = await time(() =>
  raw.transaction(() => { for (let i = 1; i <= N; i++) insTask.run('bench', i, JSON.stringify({ command: `echo task ${i}`, instanceType: TYPE, state: 'QUEUED' })); })(),
);
raw.close();

// ---- gq's local queue
const db = openDb(join(work, 'gq'));
const queues = new LocalQueueProvider(db);
const q = await queues.ensure('bench-queue', TYPE, { visibilitySeconds: 60, maxReceiveCount: 3 });
const tasks = Array.from({ length: N }, (_, i) => i + 1);
const gqSend = await time(() => q.send(tasks));
const depth = await q.depth();
if (depth.visible !== N) throw new Error(`queue depth ${depth.visible}, expected ${N}`);
const gqRound = (await time(async () => {
  for (let r = 0; r < ROUNDS; r++) {
    const got = await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 60 });
    for (const m of got) await q.delete(m.receipt);
  }
})) / ROUNDS;

// ---- gq's local status store
const st = new LocalStatusStore(db);
const spec = {
  name: 'bench-status', backend: 'local', createdAt: new Date().toISOString(), total: N, instanceTypes: { [TYPE]: N },
  codeKey: 'bundles/0000.tar.gz', resultsPath: 'results.json', outputs: [], maxAttempts: 3, timeoutSeconds: 0,
  installTimeoutSeconds: 60, installAttempts: 1, visibilitySeconds: 30, idleSeconds: 5,
};
const newTasks = tasks.map((task) => ({ task, instanceType: TYPE, command: `echo task ${task}` }));
const gqCreate = await time(() => st.createJob(spec, newTasks));
const gqAgain = await time(() => st.createJob(spec, newTasks));
const gqCancel = await time(() => st.cancel(spec.name));
db.close();
rmSync(work, { recursive: true, force: true });

const row = (label, ms, base) =>
  console.log(`${label.padEnd(34)} ${ms.toFixed(ms < 100 ? 2 : 0).padStart(8)} ms   baseline ${base.toFixed(base < 100 ? 2 : 0).padStart(8)} ms   ratio ${(ms / base).toFixed(1)}`);
console.log(`local stores, ${N.toLocaleString('en-US')} tasks (baseline: plain better-sqlite3, same run)`);
row(`queue send ${N.toLocaleString('en-US')}`, gqSend, rawSend);
row('queue receive 10 + delete 10', gqRound, rawRound);
row(`status createJob ${N.toLocaleString('en-US')}`, gqCreate, rawCreate);
row(`status createJob again (existing)`, gqAgain, rawCreate);
row(`status cancel ${N.toLocaleString('en-US')}`, gqCancel, rawCreate);
