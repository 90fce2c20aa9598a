/**
 * The three checks every fault scenario ends with, on either backend:
 *  1. every task is in a final state, or legitimately queued (when the scenario says so);
 *  2. the job's counters equal a count of its task items;
 *  3. every result a task produced is present exactly once (in the merged results).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { expect } from 'vitest';
import type { Counts, StatusStore, TaskState } from '../../packages/common/src/index.js';
import { gq } from './cli.js';

export interface CountingStore extends StatusStore {
  countTasksByState(job: string): Counts | Promise<Counts>;
}

export async function checkInvariants(o: {
  status: CountingStore;
  job: string;
  env: NodeJS.ProcessEnv;
  out: string;
  /** States a task may legitimately end the scenario in (default: final states only). */
  allowed?: TaskState[];
  /** Column of the results file that identifies the task (each must appear once). */
  idColumn?: string;
}): Promise<void> {
  const job = await o.status.getJob(o.job);
  expect(job, `job ${o.job}`).toBeDefined();
  const tasks = await o.status.listTasks(o.job);
  const allowed = new Set<TaskState>(o.allowed ?? ['SUCCEEDED', 'FAILED', 'CANCELLED']);
  for (const t of tasks) expect(allowed.has(t.state), `task ${t.task} is ${t.state}`).toBe(true);
  expect(tasks).toHaveLength(job!.total);
  expect(await o.status.countTasksByState(o.job)).toEqual(job!.counts);
  const r = await gq(['results', o.job, '--out', o.out], o.env);
  expect(r.code, r.stderr).toBe(0);
  const rows = parse(readFileSync(join(o.out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const succeeded = tasks.filter((t) => t.state === 'SUCCEEDED' && t.resultKey).map((t) => String(t.task));
  // Exactly one merged row per task that produced a result (tasks write one row each).
  expect(rows.map((x) => x.task).sort()).toEqual(succeeded.sort());
  if (o.idColumn) {
    const ids = rows.map((x) => x[o.idColumn!]);
    expect(new Set(ids).size).toBe(ids.length);
  }
}
