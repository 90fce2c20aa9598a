/**
 * gq results NAME [--out DIR]: downloads every task's results file, extra outputs and log into
 * DIR/tasks/<task>/, writes the merged DIR/results.csv, and says which tasks have no results and
 * why. Files are written to a temporary name and renamed, so running it twice is safe.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import { JobNotFoundError, keys, type Backend, type TaskRecord } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { mergeResults, type TaskResultFile } from '../results/merge.js';
import { pathUnder } from '../results/safe-path.js';

export interface ResultsArgs {
  name: string;
  out?: string;
  json?: boolean;
}

async function download(backend: Backend, key: string, dest: string): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.gq-partial`;
  await backend.artifacts.getFile(key, tmp);
  renameSync(tmp, dest);
}

/** Keys a task may own: jobs/<job>/tasks/<task>/files/<rel> and its log. */
function relOf(job: string, t: TaskRecord, key: string): string | undefined {
  const prefix = keys.taskPrefix(job, t.task) + 'files/';
  return key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
}

export async function runResults(ctx: CommandContext, a: ResultsArgs): Promise<number> {
  const out = a.out ?? join('results', a.name);
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    const tasks = await backend.status.listTasks(a.name);
    const limit = pLimit(8);
    const files: TaskResultFile[] = [];
    const missing: Array<{ task: number; state: string; why: string }> = [];
    const jobs: Array<Promise<void>> = [];
    for (const t of tasks) {
      const taskDir = join(out, 'tasks', String(t.task));
      const wanted = [...(t.resultKey ? [t.resultKey] : []), ...(t.outputKeys ?? [])];
      for (const key of new Set(wanted)) {
        const rel = relOf(a.name, t, key);
        // A key that does not belong to this task, or would land outside --out, is refused.
        const dest = pathUnder(taskDir, rel ?? `../${key}`);
        jobs.push(limit(() => download(backend, key, dest)));
      }
      if (t.logKey) jobs.push(limit(() => download(backend, t.logKey!, pathUnder(taskDir, 'log.txt'))));
      if (!t.resultKey) missing.push({ task: t.task, state: t.state, why: whyMissing(t, job.resultsPath) });
    }
    await Promise.all(jobs);
    for (const t of tasks) {
      if (!t.resultKey) continue;
      const rel = relOf(a.name, t, t.resultKey)!;
      files.push({ task: t.task, text: readFileSync(pathUnder(join(out, 'tasks', String(t.task)), rel), 'utf8') });
    }
    const merged = mergeResults(files);
    mkdirSync(out, { recursive: true });
    const target = join(out, 'results.csv');
    writeFileSync(`${target}.gq-partial`, merged.csv);
    renameSync(`${target}.gq-partial`, target);
    if (a.json) {
      ctx.io.out(JSON.stringify({ out, results: target, rows: merged.rows, columns: merged.columns, missing, problems: merged.problems }));
    } else {
      ctx.io.out(`Wrote ${target}: ${merged.rows} rows from ${files.length} of ${tasks.length} tasks; per-task files under ${join(out, 'tasks')}/`);
      for (const m of missing.slice(0, 20)) ctx.io.out(`  task ${m.task}: no results (${m.state}): ${m.why}`);
      if (missing.length > 20) ctx.io.out(`  ... and ${missing.length - 20} more tasks without results`);
      for (const p of merged.problems) ctx.io.out(`  task ${p.task}: ${p.message}`);
    }
    return 0;
  } finally {
    await backend.close();
  }
}

function whyMissing(t: TaskRecord, resultsPath: string): string {
  switch (t.state) {
    case 'QUEUED':
      return 'not run yet';
    case 'RUNNING':
      return 'still running';
    case 'CANCELLED':
      return 'cancelled';
    case 'FAILED':
      return `failed: ${t.error ?? 'unknown error'} (gq logs ${t.job} ${t.task})`;
    case 'SUCCEEDED':
      return `exited 0 but wrote no ${resultsPath}`;
  }
}
