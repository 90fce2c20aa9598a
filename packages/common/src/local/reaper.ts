/**
 * Tasks of dead local workers. A worker killed with SIGKILL (or by the OOM killer) leaves its task
 * RUNNING under a lease that would hold it for the whole visibility timeout (5 minutes by
 * default). On this machine gq can see that the worker's process is gone, so it need not wait:
 * the reaper stops what the dead worker left running (its command's process group, procs.ts
 * reapRun), then, in one transaction, ends the task's lease and makes its message visible. The
 * next receive takes the task over as after a lease that ran out (decideClaim: a new attempt, or
 * FAILED when none is left).
 *
 * Who runs it: every receive of a local queue (the surviving workers between tasks, at most once
 * a second while they poll) and the local fleet's liveness check (every gq command that looks at
 * the workers: status, --wait, submit). Safe to run anywhere at any time:
 *  - a task is touched only when its holder's process is certainly gone: the pid is gone (or a
 *    zombie), or it names another process than the worker's (the start time recorded with the pid
 *    differs), so a task is never run twice while its holder is alive; a holder without a record
 *    or a pid is left to its lease;
 *  - the write is one BEGIN IMMEDIATE transaction, conditional on the version read: a reaper that
 *    dies half-way changed nothing, and two reapers never both act (the second finds the version
 *    moved, or the lease already ended);
 *  - the command group is killed before the lease ends, so the old run never overlaps the new one.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import type { InstanceRecord } from '../job/model.js';
import { withWriteLock, type Db } from './db.js';
import { reapRun, workerAlive } from './procs.js';
import { isPlainSegment } from '../safe-path.js';

interface RunningRow {
  task: number;
  instance_type: string;
  version: number;
  record: string;
}

/** A RUNNING task under a live lease, as the reaper sees it. */
interface Held {
  task: number;
  instanceType: string;
  version: number;
  instance: string;
}

/** A job name or instance id usable as one path segment (else the work folder is not ours to touch). */

/**
 * Stop what a worker whose process is gone left running, and remove its work folder
 * (<home>/work/<job>/<instance>, with the agent's run files `running`, `running.<slot>`: agent run.ts, workspace.ts).
 * Best effort: never in the way of status or scaling.
 */
export function reapWorkFolder(home: string, job: string, instance: string): void {
  try {
    if (!isPlainSegment(job) || !isPlainSegment(instance)) return;
    const dir = join(home, 'work', job, instance);
    if (!existsSync(dir)) return;
    // One run file per slot: `running`, `running.1`, ... (agent workspace.ts).
    for (const f of readdirSync(dir)) if (/^running(\.\d+)?$/.test(f)) reapRun(join(dir, f));
    rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

export class LocalReaper {
  private readonly s: {
    running: Statement<[string], RunningRow>;
    instance: Statement<[string, string], { record: string }>;
    endLease: Statement<[number, string, number, string, number]>;
    showMessage: Statement<[number, string, string, number]>;
    queueOf: Statement<[string, string], { id: number }>;
    send: Statement<[number, number, number, number]>;
  };
  private readonly release: (job: string, held: readonly Held[], now: number) => number;

  constructor(
    private readonly db: Db,
    private readonly home: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.s = {
      running: db.prepare(`SELECT task, instance_type, version, record FROM tasks WHERE job = ? AND state = 'RUNNING'`),
      instance: db.prepare('SELECT record FROM instances WHERE job = ? AND instance = ?'),
      endLease: db.prepare(
        `UPDATE tasks SET version = version + 1, record = json_set(record, '$.leaseUntil', ?)
         WHERE job = ? AND task = ? AND state = 'RUNNING' AND json_extract(record, '$.instance') = ? AND version = ?`,
      ),
      showMessage: db.prepare(
        `UPDATE messages SET visible_at = MIN(visible_at, ?)
         WHERE queue = (SELECT id FROM queues WHERE job = ? AND instance_type = ?) AND task = ? AND dead = 0`,
      ),
      queueOf: db.prepare('SELECT id FROM queues WHERE job = ? AND instance_type = ?'),
      send: db.prepare('INSERT INTO messages (queue, task, visible_at, sent_at) VALUES (?, ?, ?, ?)'),
    };
    const tx = db.transaction((job: string, held: readonly Held[], now: number) => {
      let released = 0;
      for (const h of held) {
        if (this.s.endLease.run(now, job, h.task, h.instance, h.version).changes !== 1) continue; // moved meanwhile
        released++;
        // Its message (in flight under the dead worker's receipt) shows again now; a task whose
        // message is gone (none left that is not dead-lettered) gets a new one.
        if (this.s.showMessage.run(now, job, h.instanceType, h.task).changes === 0) {
          const q = this.s.queueOf.get(job, h.instanceType);
          if (q) this.s.send.run(q.id, h.task, now, now);
        }
      }
      return released;
    });
    this.release = (job, held, now) => withWriteLock(this.db, () => tx(job, held, now));
  }

  /**
   * Release the tasks of `job` whose holder's process is gone. Returns how many were released.
   * Reads first (no lock) and writes only when there is something to release.
   */
  reap(job: string): number {
    if (!this.db.open) return 0;
    const now = this.clock();
    const held: Held[] = [];
    for (const r of this.s.running.all(job)) {
      const rec = JSON.parse(r.record) as { instance?: string; leaseUntil?: number };
      if (!rec.instance || (rec.leaseUntil ?? 0) <= now) continue; // no live lease: the claim handles it
      held.push({ task: r.task, instanceType: r.instance_type, version: r.version, instance: rec.instance });
    }
    if (held.length === 0) return 0;
    const dead = new Set<string>();
    for (const instance of new Set(held.map((h) => h.instance))) {
      const row = this.s.instance.get(job, instance);
      if (!row) continue; // nothing known about its process: left to its lease
      const w = JSON.parse(row.record) as InstanceRecord;
      if (w.pid === undefined) continue;
      if (!workerAlive(w)) dead.add(instance);
    }
    if (dead.size === 0) return 0;
    // Its command first, so that the old run is over before the task can be taken again.
    for (const instance of dead) reapWorkFolder(this.home, job, instance);
    return this.release(
      job,
      held.filter((h) => dead.has(h.instance)),
      this.clock(),
    );
  }
}
