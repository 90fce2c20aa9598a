/**
 * TaskQueue on SQLite, behaving like an SQS standard queue with a redrive policy:
 *  - `receive` hides up to `max` (≤ 10) visible messages for the visibility timeout, in one
 *    BEGIN IMMEDIATE transaction, so two receivers never get the same delivery;
 *  - each delivery gets a fresh receipt handle; an older one is stale: `delete` ignores it,
 *    `extend` / `release` (SQS ChangeMessageVisibility) throw ReceiptInvalidError;
 *  - a message received more than `maxReceiveCount` times goes to the dead-letter queue on the
 *    receive that would exceed the count, instead of being delivered;
 *  - a delivery can stay hidden at most 12 hours from its receive; longer extensions are clamped;
 *  - long poll: when nothing is visible, a cheap read-only probe runs every `pollMs` until
 *    `waitSeconds` (≤ 20, as in SQS) have passed (the write lock is only taken when something is
 *    visible);
 *  - with a `reap` hook, a polling receive first gives back the tasks of dead workers (reaper.ts);
 *  - with `deleteBatchMs`, a delete is only noted and goes out with the next receive (in its
 *    transaction), `depth`, `flush`, or at the latest `deleteBatchMs` later (see the option);
 *  - no message delay on send (so `depth().delayed` is always 0) and no retention limit.
 */
import type { Statement, Transaction } from 'better-sqlite3';
import type { QueueDepth, QueueOptions, QueueProvider, ReceivedMessage, TaskQueue } from '../ports.js';
import { UserError } from '../errors.js';
import { sleep } from '../time.js';
import { withWriteLock, type Db } from './db.js';
import { randomToken } from '../random-token.js';
import { QueueNotFoundError, ReceiptInvalidError } from '../port-errors.js';
import { MAX_VISIBILITY_SECONDS } from '../ports.js';
import type { Pool } from '../job/on-demand.js';

/** SQS limits (the 12-hour one is the ports'). */
export { MAX_VISIBILITY_SECONDS };
export const MAX_RECEIVE_BATCH = 10;
export const MAX_WAIT_SECONDS = 20;
const MAX_VISIBILITY_MS = MAX_VISIBILITY_SECONDS * 1000;

export interface LocalQueueOptions {
  /** Clock for message times (tests). Long-poll waits always use real time. */
  clock?: () => number;
  /** Long-poll probe interval, ms (default 50). */
  pollMs?: number;
  /**
   * Run by receive at most once every REAP_EVERY_MS while it polls: gives back the tasks of the
   * job's workers whose process is gone (reaper.ts), so that a surviving worker takes them at once.
   */
  reap?: (job: string) => void;
  /**
   * Hold deletes back (the agent's side, as the SQS adapter's option of the same name): `delete`
   * checks the receipt and notes it; the noted deletes are written in the transaction of this
   * queue object's next receive (one commit instead of two per finished task), or before a
   * `depth`, `deadLetters`, `purge` or `flush`, and at the latest this many ms after the first.
   * A noted delete that never goes out (the process died) only lets the message come back after
   * its visibility timeout, as a delivery of a finished task: the status store's claim answers
   * it with `done` and it is deleted then. Default 0: every delete is written before it returns.
   */
  deleteBatchMs?: number;
  /**
   * The agent's side: a receive that delivers leaves its transaction open for the claim that
   * follows it (db.ts, withWriteLock `leaveOpen`): one commit for both. Default false.
   */
  leaveReceiveOpen?: boolean;
}

/** How often a polling receive looks for the tasks of dead workers. */
export const REAP_EVERY_MS = 1000;

interface QueueRow {
  id: number;
  visibility_seconds: number;
  max_receive_count: number;
}

/** A delete noted but not yet written (`deleteBatchMs`). */
interface HeldDelete {
  id: number;
  receipt: string;
}

interface MessageRow {
  id: number;
  task: number;
  receive_count: number;
  first_received_at: number | null;
}

const seconds = (what: string, v: number, max: number): number => {
  if (!Number.isFinite(v) || v < 0) throw new UserError(`${what} must be a number of seconds ≥ 0, got ${v}.`);
  return Math.min(v, max);
};

function newReceipt(id: number): string {
  return `${id}.${randomToken(12, 'base64url')}`;
}

function parseReceipt(receipt: string): number {
  const dot = typeof receipt === 'string' ? receipt.indexOf('.') : -1;
  const id = dot > 0 ? Number(receipt.slice(0, dot)) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) throw new ReceiptInvalidError(String(receipt), 'is malformed');
  return id;
}

/** The statements every queue shares; prepared once per connection. */
class Statements {
  readonly queueById: Statement<[number], QueueRow>;
  readonly queueByName: Statement<[string, string], QueueRow>;
  readonly upsertQueue: Statement<[string, string, number, number, number]>;
  readonly deleteQueue: Statement<[number]>;
  readonly deleteQueueMessages: Statement<[number]>;
  readonly insert: Statement<[number, number, number, number]>;
  readonly anyVisible: Statement<[number, number], { one: number }>;
  readonly visible: Statement<[number, number, number], MessageRow>;
  readonly deliver: Statement<[number, number, string, number, number, number]>;
  readonly kill: Statement<[number]>;
  readonly extend: Statement<[number, number, string]>;
  readonly release: Statement<[number, number, string]>;
  readonly del: Statement<[number, string]>;
  readonly delMany: Transaction<(held: readonly HeldDelete[]) => void>;
  readonly depth: Statement<[number, number, number, number], { visible: number | null; inFlight: number | null; delayed: number | null }>;
  readonly dead: Statement<[number], { task: number }>;
  readonly purge: Statement<[number]>;

  constructor(db: Db) {
    this.queueById = db.prepare('SELECT id, visibility_seconds, max_receive_count FROM queues WHERE id = ?');
    this.queueByName = db.prepare(
      'SELECT id, visibility_seconds, max_receive_count FROM queues WHERE job = ? AND instance_type = ?',
    );
    this.upsertQueue = db.prepare(
      `INSERT INTO queues (job, instance_type, visibility_seconds, max_receive_count, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (job, instance_type) DO UPDATE SET
         visibility_seconds = excluded.visibility_seconds, max_receive_count = excluded.max_receive_count`,
    );
    this.deleteQueue = db.prepare('DELETE FROM queues WHERE id = ?');
    this.deleteQueueMessages = db.prepare('DELETE FROM messages WHERE queue = ?');
    this.insert = db.prepare('INSERT INTO messages (queue, task, visible_at, sent_at) VALUES (?, ?, ?, ?)');
    this.anyVisible = db.prepare(
      'SELECT 1 AS one FROM messages WHERE queue = ? AND dead = 0 AND visible_at <= ? LIMIT 1',
    );
    this.visible = db.prepare(
      `SELECT id, task, receive_count, first_received_at FROM messages
       WHERE queue = ? AND dead = 0 AND visible_at <= ? ORDER BY visible_at, id LIMIT ?`,
    );
    this.deliver = db.prepare(
      `UPDATE messages SET visible_at = ?, receive_count = ?, receipt = ?, received_at = ?, first_received_at = ?
       WHERE id = ?`,
    );
    this.kill = db.prepare('UPDATE messages SET dead = 1, receipt = NULL WHERE id = ?');
    this.extend = db.prepare(
      `UPDATE messages SET visible_at = MIN(?, received_at + ${MAX_VISIBILITY_MS})
       WHERE id = ? AND receipt = ? AND dead = 0`,
    );
    this.release = this.extend;
    this.del = db.prepare('DELETE FROM messages WHERE id = ? AND receipt = ? AND dead = 0');
    this.delMany = db.transaction((held: readonly HeldDelete[]) => {
      for (const h of held) this.del.run(h.id, h.receipt);
    });
    this.depth = db.prepare(
      `SELECT
         SUM(visible_at <= ?) AS visible,
         SUM(visible_at > ? AND receipt IS NOT NULL) AS inFlight,
         SUM(visible_at > ? AND receipt IS NULL) AS delayed
       FROM messages WHERE queue = ? AND dead = 0`,
    );
    // Each task once, as the SQS adapter reports them (a task sent again can dead-letter twice).
    this.dead = db.prepare('SELECT DISTINCT task FROM messages WHERE queue = ? AND dead = 1 ORDER BY task');
    this.purge = db.prepare('DELETE FROM messages WHERE queue = ? AND dead = 0');
  }
}

/** The queue row's type column: the type, and for the on-demand pool (job/on-demand.ts) a suffix no type has. */
const rowType = (instanceType: string, pool: Pool): string => (pool === 'main' ? instanceType : `${instanceType}#${pool}`);

export class LocalQueueProvider implements QueueProvider {
  private readonly st: Statements;
  private readonly clock: () => number;
  private readonly pollMs: number;
  private readonly reap: ((job: string) => void) | undefined;
  private readonly deleteBatchMs: number;
  private readonly leaveReceiveOpen: boolean;
  private readonly removeTx: Transaction<(id: number) => void>;

  constructor(
    private readonly db: Db,
    opts: LocalQueueOptions = {},
  ) {
    this.st = new Statements(db);
    this.clock = opts.clock ?? Date.now;
    this.pollMs = opts.pollMs ?? 50;
    this.reap = opts.reap;
    this.deleteBatchMs = Math.max(0, opts.deleteBatchMs ?? 0);
    this.leaveReceiveOpen = opts.leaveReceiveOpen ?? false;
    this.removeTx = db.transaction((id: number) => {
      this.st.deleteQueueMessages.run(id);
      this.st.deleteQueue.run(id);
    });
  }

  async ensure(job: string, instanceType: string, opts: QueueOptions, pool: Pool = 'main'): Promise<TaskQueue> {
    const vis = seconds('visibilitySeconds', opts.visibilitySeconds, MAX_VISIBILITY_SECONDS);
    if (!Number.isInteger(opts.maxReceiveCount) || opts.maxReceiveCount < 1) {
      throw new UserError(`maxReceiveCount must be an integer ≥ 1, got ${opts.maxReceiveCount}.`);
    }
    this.st.upsertQueue.run(job, rowType(instanceType, pool), vis, opts.maxReceiveCount, this.clock());
    return this.open(job, instanceType, pool);
  }

  async open(job: string, instanceType: string, pool: Pool = 'main'): Promise<LocalTaskQueue> {
    const row = this.st.queueByName.get(job, rowType(instanceType, pool));
    if (!row) throw new QueueNotFoundError(job, instanceType);
    return new LocalTaskQueue(this.db, this.st, row.id, job, instanceType, this.clock, this.pollMs, this.reap, pool, this.deleteBatchMs, this.leaveReceiveOpen);
  }

  async remove(job: string, instanceType: string, pool: Pool = 'main'): Promise<void> {
    const row = this.st.queueByName.get(job, rowType(instanceType, pool));
    if (row) withWriteLock(this.db, () => this.removeTx(row.id));
  }
}

export class LocalTaskQueue implements TaskQueue {
  private readonly sendTx: Transaction<(tasks: readonly number[], now: number) => void>;
  private readonly receiveTx: Transaction<(max: number, visibilityMs: number, now: number) => ReceivedMessage[]>;
  private lastReap = 0;
  /** Deletes noted, not yet written (`deleteBatchMs`), and the timer that writes them at the latest. */
  private held: HeldDelete[] = [];
  private heldTimer: NodeJS.Timeout | undefined;

  /** Use LocalQueueProvider.ensure / open. */
  constructor(
    private readonly db: Db,
    private readonly st: Statements,
    private readonly queueId: number,
    readonly job: string,
    readonly instanceType: string,
    private readonly clock: () => number,
    private readonly pollMs: number,
    private readonly reap?: (job: string) => void,
    readonly pool: Pool = 'main',
    private readonly deleteBatchMs = 0,
    private readonly leaveReceiveOpen = false,
  ) {
    this.sendTx = db.transaction((tasks: readonly number[], now: number) => {
      if (!st.queueById.get(queueId)) throw new QueueNotFoundError(job, instanceType);
      for (const t of tasks) st.insert.run(queueId, t, now, now);
    });
    this.receiveTx = db.transaction((max: number, visibilityMs: number, now: number) => {
      this.writeHeld();
      const q = st.queueById.get(queueId);
      if (!q) return [];
      const out: ReceivedMessage[] = [];
      // Dead-lettering frees slots, so look again until the batch is full or nothing is visible.
      while (out.length < max) {
        const rows = st.visible.all(queueId, now, max - out.length);
        if (rows.length === 0) break;
        for (const r of rows) {
          const receiveCount = r.receive_count + 1;
          if (receiveCount > q.max_receive_count) {
            st.kill.run(r.id);
            continue;
          }
          const receipt = newReceipt(r.id);
          st.deliver.run(now + visibilityMs, receiveCount, receipt, now, r.first_received_at ?? now, r.id);
          out.push({ task: r.task, receipt, receiveCount });
        }
      }
      return out;
    });
  }

  async send(tasks: readonly number[]): Promise<void> {
    for (const t of tasks) {
      if (!Number.isSafeInteger(t)) throw new UserError(`Task numbers must be integers, got ${t}.`);
    }
    // One transaction: a send is all or nothing (100,000 rows take well under a second).
    if (tasks.length > 0) withWriteLock(this.db, () => this.sendTx(tasks, this.clock()));
  }

  async receive(opts: { max: number; waitSeconds: number; visibilitySeconds: number }): Promise<ReceivedMessage[]> {
    const max = Math.max(1, Math.min(MAX_RECEIVE_BATCH, Math.floor(opts.max)));
    const visibilityMs = Math.round(seconds('visibilitySeconds', opts.visibilitySeconds, MAX_VISIBILITY_SECONDS) * 1000);
    const deadline = Date.now() + Math.max(0, Math.min(MAX_WAIT_SECONDS, opts.waitSeconds)) * 1000;
    for (;;) {
      if (!this.db.open) return [];
      // Removed (the job was cleaned): say so, as SQS answers QueueDoesNotExist.
      if (!this.st.queueById.get(this.queueId)) throw new QueueNotFoundError(this.job, this.instanceType);
      if (this.reap && Date.now() - this.lastReap >= REAP_EVERY_MS) {
        this.lastReap = Date.now();
        try {
          this.reap(this.job);
        } catch {
          /* only a shortcut: the lease still runs out by itself */
        }
      }
      const now = this.clock();
      if (this.st.anyVisible.get(this.queueId, now)) {
        const got = withWriteLock(this.db, () => this.receiveTx(max, visibilityMs, now), { leaveOpen: this.leaveReceiveOpen });
        if (got.length > 0) return got;
      } else this.flushHeld();
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await sleep(Math.min(this.pollMs, left));
    }
  }

  async extend(receipt: string, secondsFromNow: number): Promise<void> {
    const id = parseReceipt(receipt);
    const ms = Math.round(seconds('seconds', secondsFromNow, MAX_VISIBILITY_SECONDS) * 1000);
    if (this.st.extend.run(this.clock() + ms, id, receipt).changes !== 1) throw new ReceiptInvalidError(receipt);
  }

  async release(receipt: string, delaySeconds = 0): Promise<void> {
    const id = parseReceipt(receipt);
    const ms = Math.round(seconds('delaySeconds', delaySeconds, MAX_VISIBILITY_SECONDS) * 1000);
    if (this.st.release.run(this.clock() + ms, id, receipt).changes !== 1) throw new ReceiptInvalidError(receipt);
  }

  async delete(receipt: string): Promise<void> {
    // As in SQS, deleting with a stale receipt succeeds without deleting anything.
    const id = parseReceipt(receipt);
    if (this.deleteBatchMs <= 0) {
      this.st.del.run(id, receipt);
      return;
    }
    this.held.push({ id, receipt });
    this.heldTimer ??= setTimeout(() => {
      try {
        this.flushHeld();
      } catch {
        /* the next receive, depth or flush writes them; else the message comes back (see the option) */
      }
    }, this.deleteBatchMs).unref();
  }

  async flush(): Promise<void> {
    this.flushHeld();
  }

  /** Write the noted deletes in a transaction of their own (none open). */
  private flushHeld(): void {
    if (this.held.length > 0 && this.db.open) withWriteLock(this.db, () => this.st.delMany(this.takeHeld()));
    else this.takeHeld();
  }

  /** Write the noted deletes inside the caller's transaction. */
  private writeHeld(): void {
    if (this.held.length > 0) this.st.delMany(this.takeHeld());
  }

  private takeHeld(): HeldDelete[] {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    return this.held.splice(0);
  }

  async depth(): Promise<QueueDepth> {
    this.flushHeld();
    const now = this.clock();
    const r = this.st.depth.get(now, now, now, this.queueId);
    return { visible: r?.visible ?? 0, inFlight: r?.inFlight ?? 0, delayed: r?.delayed ?? 0 };
  }

  async deadLetters(): Promise<number[]> {
    this.flushHeld();
    return this.st.dead.all(this.queueId).map((r) => r.task);
  }

  async purge(): Promise<void> {
    this.flushHeld();
    this.st.purge.run(this.queueId);
  }
}
