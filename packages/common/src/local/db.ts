/**
 * The local backend's single SQLite file, `<home>/gq.db`. Every process (each worker, the CLI)
 * opens its own connection. WAL lets `gq status` read while workers write; `busy_timeout` makes a
 * writer wait for the lock instead of failing with SQLITE_BUSY; every read-modify-write runs in a
 * `BEGIN IMMEDIATE` transaction so that it takes the write lock before it reads. With
 * `synchronous = NORMAL`, a commit is a write to the WAL without an fsync: durable when the
 * process crashes, not when the machine loses power: the WAL is synced only when it is
 * checkpointed (https://www.sqlite.org/pragma.html#pragma_synchronous; README, "Local backend
 * speed and durability").
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GqError } from '../errors.js';

export type Db = Database.Database;

/** Bump with a new entry in MIGRATIONS when the schema changes. */
export const SCHEMA_VERSION = 2;

const DEFAULT_BUSY_TIMEOUT_MS = 30_000;
/** WAL pages between automatic checkpoints (4 KiB each: at most about 40 MiB of WAL). */
export const WAL_CHECKPOINT_PAGES = 10_000;

/** MIGRATIONS[i] takes the schema from version i to i + 1. Each must be idempotent. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE IF NOT EXISTS jobs (
    name             TEXT PRIMARY KEY,
    spec             TEXT NOT NULL,              -- JobSpec as JSON (fixed at submit)
    created_at       TEXT NOT NULL,              -- spec.createdAt, for newest-first listing
    queued           INTEGER NOT NULL DEFAULT 0,
    running          INTEGER NOT NULL DEFAULT 0,
    succeeded        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    cancelled        INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);

  CREATE TABLE IF NOT EXISTS tasks (
    job           TEXT NOT NULL,
    task          INTEGER NOT NULL,
    instance_type TEXT NOT NULL,
    command       TEXT NOT NULL,
    state         TEXT NOT NULL,
    version       INTEGER NOT NULL,
    record        TEXT NOT NULL,                 -- the other TaskRecord fields as JSON
    PRIMARY KEY (job, task)
  );
  CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (job, state);

  CREATE TABLE IF NOT EXISTS instances (
    job      TEXT NOT NULL,
    instance TEXT NOT NULL,
    record   TEXT NOT NULL,                      -- InstanceRecord as JSON
    PRIMARY KEY (job, instance)
  );

  CREATE TABLE IF NOT EXISTS queues (
    id                 INTEGER PRIMARY KEY,
    job                TEXT NOT NULL,
    instance_type      TEXT NOT NULL,
    visibility_seconds REAL NOT NULL,
    max_receive_count  INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (job, instance_type)
  );

  CREATE TABLE IF NOT EXISTS messages (
    id                INTEGER PRIMARY KEY,
    queue             INTEGER NOT NULL,
    task              INTEGER NOT NULL,
    visible_at        INTEGER NOT NULL,          -- epoch ms; hidden while > now
    receive_count     INTEGER NOT NULL DEFAULT 0,
    receipt           TEXT,                      -- handle of the current delivery, NULL if never received
    received_at       INTEGER,                   -- epoch ms of the current delivery (12-hour cap)
    first_received_at INTEGER,
    dead              INTEGER NOT NULL DEFAULT 0, -- 1 = in the dead-letter queue
    sent_at           INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, dead, visible_at);
  `,
  // 1 → 2: tasks by state in task order, so "the first N failed tasks" (gq status) reads N rows
  // instead of sorting every failed task.
  `
  DROP INDEX IF EXISTS tasks_by_state;
  CREATE INDEX IF NOT EXISTS tasks_by_state_task ON tasks (job, state, task);
  `,
];

export interface OpenDbOptions {
  /** How long a writer waits for the lock before SQLITE_BUSY (default 30 s). */
  busyTimeoutMs?: number;
}

export function dbPath(home: string): string {
  return join(home, 'gq.db');
}

/** Open (creating if needed) `<home>/gq.db` with WAL, busy_timeout and the current schema. */
export function openDb(home: string, opts: OpenDbOptions = {}): Db {
  mkdirSync(home, { recursive: true });
  const timeout = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const db = new Database(dbPath(home), { timeout });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(timeout))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Checkpoint (copy the WAL into the file, with an fsync of each) every WAL_CHECKPOINT_PAGES
    // pages instead of SQLite's 1,000: a worker rewrites the same few pages (the job's counters,
    // its own record) for every task, and a longer interval copies each of them once for many
    // tasks. The price: what a power loss can take back is longer (README, "Local backend speed
    // and durability"); a process crash takes nothing back either way.
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    migrate(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** Bring the schema up to SCHEMA_VERSION; safe when several processes open the file at once. */
export function migrate(db: Db): void {
  const current = () => db.pragma('user_version', { simple: true }) as number;
  if (current() === SCHEMA_VERSION) return;
  db.transaction(() => {
    const v = current();
    if (v > SCHEMA_VERSION) {
      throw new GqError(
        `${db.name} has schema version ${v}, newer than this gq understands (${SCHEMA_VERSION}); upgrade gq.`,
      );
    }
    for (let i = v; i < SCHEMA_VERSION; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Run `body` (which may call transaction functions: they nest as savepoints) in a BEGIN
 * IMMEDIATE transaction whose write lock is waited for in short steps (50 µs doubling to 2 ms)
 * instead of by SQLite's busy handler, which sleeps 1, 2, 5, 10 … ms between tries: two workers
 * that write a few times per task collide often, each holds the lock for well under a
 * millisecond, and a millisecond's sleep at every collision was a tenth of a short task's time.
 * The same overall limit applies (the connection's busy_timeout); only the first statement waits
 * this way: inside the transaction the connection's busy handler is back as before.
 *
 * `leaveOpen` (a queue's receive on the agent's side): the transaction is not committed on
 * return but by the next write of this connection, which joins it as a savepoint and commits both
 * (a receive and the claim of what it delivered: one commit and one lock wait instead of two),
 * or, if none comes first, by a setImmediate: at most one turn of the event loop later, never
 * across a timer or I/O wait of the caller. Until then nothing of it is visible to the others, and
 * a crash takes it back as if it had not happened (a receive that never was: the messages stay
 * visible). Every write without `leaveOpen` is committed before it returns, as before.
 */
export function withWriteLock<T>(db: Db, body: () => T, opts: { leaveOpen?: boolean } = {}): T {
  const left = leftOpen.get(db);
  if (left === undefined && db.inTransaction) return body(); // inside a caller's transaction
  const l = lockOf(db);
  if (left === undefined) {
    begin(l);
  }
  let out: T;
  try {
    // Joining the one left open: a failure undoes this write only, not the earlier one.
    out = left === undefined ? body() : l.savepoint(body);
  } catch (e) {
    if (left === undefined) {
      if (db.inTransaction) l.rollback.run();
    } else if (!opts.leaveOpen) commitLeftOpen(db);
    throw e;
  }
  if (opts.leaveOpen) {
    if (left === undefined) leftOpen.set(db, setImmediate(() => commitLeftOpen(db)));
  } else if (left === undefined) {
    l.commit.run();
  } else {
    commitLeftOpen(db);
  }
  return out;
}

/** Commit the transaction a `leaveOpen` write left open on `db`, if any (also done before closing). */
export function commitLeftOpen(db: Db): void {
  const t = leftOpen.get(db);
  if (t === undefined) return;
  clearImmediate(t);
  leftOpen.delete(db);
  if (!db.open || !db.inTransaction) return;
  const l = lockOf(db);
  try {
    l.commit.run();
  } catch (e) {
    // Not a lock (it is held): a full disk or a damaged file. Nothing of it happened.
    if (db.inTransaction) l.rollback.run();
    throw e;
  }
}

/** The connections with a transaction left open (`leaveOpen`), and the commit scheduled for it. */
const leftOpen = new WeakMap<Db, NodeJS.Immediate>();

function begin(l: Lock): void {
  l.noWait.get();
  try {
    const start = Date.now();
    let pause = 0.05;
    for (;;) {
      try {
        l.begin.run();
        break;
      } catch (e) {
        if (!String((e as { code?: unknown }).code).startsWith('SQLITE_BUSY') || Date.now() - start >= l.timeoutMs) throw e;
      }
      Atomics.wait(pauseCell, 0, 0, pause);
      pause = Math.min(pause * 2, 2);
    }
  } finally {
    l.wait.get();
  }
}

const pauseCell = new Int32Array(new SharedArrayBuffer(4));
interface Lock {
  begin: Database.Statement;
  commit: Database.Statement;
  rollback: Database.Statement;
  noWait: Database.Statement;
  wait: Database.Statement;
  /** Runs a function as a savepoint of the transaction open on the connection. */
  savepoint: <T>(fn: () => T) => T;
  timeoutMs: number;
}
const locks = new WeakMap<Db, Lock>();
function lockOf(db: Db): Lock {
  let l = locks.get(db);
  if (!l) {
    const timeoutMs = db.pragma('busy_timeout', { simple: true }) as number;
    l = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      noWait: db.prepare('PRAGMA busy_timeout = 0'),
      wait: db.prepare(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(timeoutMs))}`),
      savepoint: db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T,
      timeoutMs,
    };
    locks.set(db, l);
  }
  return l;
}
