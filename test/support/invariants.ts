/**
 * The three checks every fault scenario ends with, on either backend:
 *  1. every task is in a final state, or legitimately queued (when the scenario says so);
 *  2. the job's counters equal a count of its task items;
 *  3. every result a task produced is present exactly once (in the merged results). Where the
 *     scenario declares that every task writes results, each SUCCEEDED task must have one: its
 *     result key recorded, the object stored, and exactly one row in the merged file. A result
 *     lost in upload (or a SUCCEEDED task recorded without its key) then fails the scenario.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { expect } from 'vitest';
import type { ArtifactStore, Counts, StatusStore, TaskState } from '../../packages/common/src/index.js';
import { gq } from './cli.js';

export interface CountingStore extends StatusStore {
  countTasksByState(job: string): Counts | Promise<Counts>;
}

/**
 * What the scenario's tasks write: `every-task` (each task that succeeds writes its results file,
 * as the fault scenarios' task() does), or `some-tasks` (a SUCCEEDED task may have none).
 */
export type ResultsDeclared = 'every-task' | 'some-tasks';

export async function checkInvariants(o: {
  status: CountingStore;
  artifacts: Pick<ArtifactStore, 'exists'>;
  job: string;
  env: NodeJS.ProcessEnv;
  out: string;
  /** Whether every task of the scenario writes results (no default: each scenario says). */
  results: ResultsDeclared;
  /** States a task may legitimately end the scenario in (default: final states only). */
  allowed?: TaskState[];
  /** Column of the results file that identifies the task (each must appear once). */
  idColumn?: string;
}): Promise<void> {
  // Called from plain JS too (or with a scenario that never said): no silent weaker check.
  if (o.results !== 'every-task' && o.results !== 'some-tasks') throw new Error(`checkInvariants: say what the tasks write (results: 'every-task' | 'some-tasks'), got ${String(o.results)}`);
  const job = await o.status.getJob(o.job);
  expect(job, `job ${o.job}`).toBeDefined();
  const tasks = await o.status.listTasks(o.job);
  const allowed = new Set<TaskState>(o.allowed ?? ['SUCCEEDED', 'FAILED', 'CANCELLED']);
  for (const t of tasks) expect(allowed.has(t.state), `task ${t.task} is ${t.state}`).toBe(true);
  expect(tasks).toHaveLength(job!.total);
  expect(await o.status.countTasksByState(o.job)).toEqual(job!.counts);

  const succeeded = tasks.filter((t) => t.state === 'SUCCEEDED');
  if (o.results === 'every-task') {
    for (const t of succeeded) expect(t.resultKey, `SUCCEEDED task ${t.task} has no result key recorded`).toBeTruthy();
  }
  // Every recorded result is stored (checked before the merge, so that a failure names the task).
  for (const t of tasks.filter((x) => x.resultKey)) {
    expect(await o.artifacts.exists(t.resultKey!), `result of task ${t.task} (${t.resultKey}) is missing from the store`).toBe(true);
  }
  const r = await gq(['results', o.job, '--out', o.out], o.env);
  expect(r.code, r.stderr).toBe(0);
  const rows = parse(readFileSync(join(o.out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const expected = (o.results === 'every-task' ? succeeded : succeeded.filter((t) => t.resultKey)).map((t) => String(t.task));
  // Exactly one merged row per task that produced a result (tasks write one row each).
  expect(rows.map((x) => x.task).sort(), 'tasks with a row in the merged results').toEqual(expected.sort());
  if (o.idColumn) {
    const ids = rows.map((x) => x[o.idColumn!]);
    expect(new Set(ids).size).toBe(ids.length);
  }
}
