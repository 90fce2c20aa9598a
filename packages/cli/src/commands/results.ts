/**
 * gq results NAME [--out DIR] [--with-provenance] [--failed]: downloads every task's results
 * file, extra outputs and log into DIR/tasks/<task>/, writes the merged DIR/results.csv and
 * DIR/tasks.csv (one row per task: where and how it ran, results problems; results/tasks-csv.ts),
 * and says which tasks have no results and why, and which results files have problems (with their
 * line). --with-provenance adds gq_* columns of tasks.csv to results.csv. --failed writes only
 * DIR/failed-tasks.csv (the tasks.csv rows of the failed tasks) and DIR/failed-jobs.csv (a job
 * file of them for gq submit), and downloads their logs. Files are written to a temporary name
 * and renamed, so running it twice is safe.
 *
 * Nothing is written outside DIR: every key is checked before the first download. A key that is
 * not the task's own (jobs/<job>/tasks/<task>/...), that would land outside DIR/tasks/<task>/
 * ("..", absolute, backslash, NUL), that passes a symbolic link in DIR, or (local backend) that
 * reads through a symbolic link in the artifact folder, makes the whole command refuse, with
 * every such key listed, before anything is downloaded.
 */
import { createReadStream, createWriteStream, lstatSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { dirname, join, resolve } from 'node:path';
import { ArtifactNotFoundError, JobNotFoundError, keys, UserError, type Backend, type TaskRecord } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { progressBar } from '../progress.js';
import { costView, taskShare } from '../cost-report.js';
import { mergeResultsTo, SMALL_FILE_BYTES, type MergeProblem, type ResultSource } from '../results/merge.js';
import { PROVENANCE_COLUMNS, provenanceOf, TaskRows, taskRow } from '../results/tasks-csv.js';
import { keyProblems } from '@gq/common/safe-path';
import { pathUnder, safeRelative, SymlinkOnPathError } from '../results/safe-path.js';

export interface ResultsArgs {
  name: string;
  out?: string;
  json?: boolean;
  withProvenance?: boolean;
  failed?: boolean;
}

/** A downloaded results file, read with a buffer no larger than it (100,000 small files, one large one). */
function openResult(file: string): Readable {
  const size = statSync(file).size;
  return createReadStream(file, { highWaterMark: Math.max(1024, Math.min(64 * 1024, size + 1)) });
}

/** The whole file when it is small (the merge parses it in one call), else undefined (streamed). */
function readSmall(file: string): Buffer | undefined {
  return statSync(file).size <= SMALL_FILE_BYTES ? readFileSync(file) : undefined;
}

/** Downloads in flight at once. */
const DOWNLOADS_AT_ONCE = 8;

/** Run `fn` on every item, `limit` at a time (workers pulling from one list: no promise per item up front). */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function download(backend: Backend, key: string, dest: string): Promise<void> {
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.gq-partial`;
  await backend.artifacts.getFile(key, tmp);
  renameSync(tmp, dest);
}

/**
 * One file to download: the artifact key (where it goes under --out follows from it: destOf; not
 * kept as a path, which for 100,000 tasks would be tens of MB).
 */
interface Planned {
  task: number;
  key: string;
  kind: 'result' | 'output' | 'log';
}

/** Where a task's file goes, relative to --out: `rel` is the key after the task's files/ prefix. */
const destRel = (task: number, kind: Planned['kind'], rel: string): string => `tasks/${task}/${kind === 'log' ? 'log.txt' : rel}`;

/** The path a planned file is written to: checked again (planTask checked it first) as it is written. */
function destOf(job: string, out: string, f: Planned): string {
  const filesPrefix = keys.taskPrefix(job, f.task) + 'files/';
  return pathUnder(out, destRel(f.task, f.kind, f.kind === 'log' ? '' : f.key.slice(filesPrefix.length)));
}

/** A key gq refuses to download, and why. */
interface Refused {
  task: number;
  key: string;
  why: string;
}

/** What is wrong with `rel` as a path (for the refusal message). */
function whyUnsafe(rel: string): string {
  const p = keyProblems(rel);
  if (p.has('nul')) return 'it contains a NUL character';
  if (p.has('absolute') || p.has('drive-letter')) return 'it is an absolute path';
  if (p.has('backslash')) return 'it contains a backslash';
  if (p.has('dotdot-segment')) return 'it climbs out with ".."';
  return 'it is not a plain relative path (empty or "." segments)';
}

/**
 * Local backend: the file behind a key must not be (or pass through) a symbolic link, which
 * would read from outside the artifact folder. Keys in S3 have no such thing.
 */
function localLinkOnTheWay(backend: Backend, key: string): string | undefined {
  const root = (backend.artifacts as { root?: unknown }).root;
  if (backend.name !== 'local' || typeof root !== 'string') return undefined;
  let cur = root;
  for (const part of key.split('/')) {
    cur = join(cur, part);
    try {
      if (lstatSync(cur).isSymbolicLink()) return cur;
    } catch {
      return undefined; // missing: reported when downloading
    }
  }
  return undefined;
}

/**
 * Where each of the task's files goes, or why it is refused. A task's files must be its own
 * (keys under jobs/<job>/tasks/<task>/), and each must land under --out/tasks/<task>/.
 */
function planTask(backend: Backend, job: string, t: TaskRecord, out: string, plan: Planned[], refused: Refused[], logOnly = false): void {
  const taskDir = join(out, 'tasks', String(t.task));
  const own = keys.taskPrefix(job, t.task);
  const filesPrefix = own + 'files/';
  const add = (key: string, kind: Planned['kind'], rel: string | undefined) => {
    if (rel === undefined) {
      refused.push({ task: t.task, key, why: `it is not one of the task's own files (they are under ${kind === 'log' ? own : filesPrefix})` });
      return;
    }
    if (!safeRelative(rel)) {
      refused.push({ task: t.task, key, why: `${whyUnsafe(rel)}, so it would be written outside ${taskDir}` });
      return;
    }
    const link = localLinkOnTheWay(backend, key);
    if (link) {
      refused.push({ task: t.task, key, why: `the artifact folder holds a symbolic link at ${link}` });
      return;
    }
    try {
      // Checked from --out itself down, so that a link anywhere below it (tasks/, tasks/<n>/, ...) is seen.
      pathUnder(out, destRel(t.task, kind, rel));
      plan.push({ task: t.task, key, kind });
    } catch (e) {
      const why =
        e instanceof SymlinkOnPathError
          ? `the output folder holds a symbolic link at ${e.link}, which could point anywhere`
          : e instanceof UserError
            ? e.message.replace(/\.$/, '')
            : String(e);
      refused.push({ task: t.task, key, why });
    }
  };
  const wanted = new Set(logOnly ? [] : [...(t.resultKey ? [t.resultKey] : []), ...(t.outputKeys ?? [])]);
  for (const key of wanted) {
    add(key, key === t.resultKey ? 'result' : 'output', key.startsWith(filesPrefix) ? key.slice(filesPrefix.length) : undefined);
  }
  if (t.logKey) {
    const rel = t.logKey.startsWith(own) ? t.logKey.slice(own.length) : undefined;
    add(t.logKey, 'log', rel);
  }
}

/** Write `name` under `out` through a temporary file ('wx': never through a link or a file that appeared), then rename it. */
async function writeFileUnder<T>(out: string, name: string, write: (w: Writable) => Promise<T>): Promise<{ path: string; value: T }> {
  const path = pathUnder(out, name);
  const partial = pathUnder(out, `${name}.gq-partial`);
  rmSync(partial, { force: true });
  const value = await write(createWriteStream(partial, { flags: 'wx' }));
  renameSync(partial, path);
  return { path, value };
}

/** A results problem as one line: with its line of the file when it has one. */
const problemText = (p: MergeProblem): string => (p.line === undefined ? p.message : `line ${p.line}: ${p.message}`);

export async function runResults(ctx: CommandContext, a: ResultsArgs): Promise<number> {
  const out = a.out ?? join('results', a.name);
  if (a.failed && a.withProvenance) {
    throw new UserError('--failed and --with-provenance do not go together.', { hint: '--failed writes no results.csv; run gq results without --failed for it.' });
  }
  const backend = await openCliBackend(ctx.config);
  let rows: TaskRows | undefined;
  let spill: string | undefined;
  let created: string | undefined;
  let done = false;
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    // How each instance is bought (Spot or not), for tasks.csv: one record per instance, not per task.
    const records = await backend.status.listInstances(a.name);
    const instances = new Map(records.map((i) => [i.instance, i]));
    // Each task's cost share (tasks.csv cost_share), from the prices its instances recorded.
    const costs = costView(job, records, [], undefined);
    // The files written in --out, each checked now: a link planted at one refuses the command
    // before anything is downloaded.
    for (const name of a.failed ? ['failed-tasks.csv', 'failed-jobs.csv'] : ['results.csv', 'tasks.csv']) {
      pathUnder(out, name);
      pathUnder(out, `${name}.gq-partial`);
    }
    // The tasks.csv rows wait in a spill file in --out; a refusal below takes it (and any folder
    // made for it) away again, so that a refused command leaves nothing behind.
    created = mkdirSync(out, { recursive: true });
    spill = pathUnder(out, '.tasks.csv.gq-rows');
    rmSync(spill, { force: true });
    rows = new TaskRows(spill);
    // The task records (commands and all) are read a page at a time and only what the downloads
    // and the merge need is kept of them (tasks.csv rows go to a spill file): 100,000 tasks fit in little memory.
    // Every destination is checked before the first byte is written: a store holding a key that
    // would land outside --out (or read through a link) gets nothing downloaded at all.
    const plan: Planned[] = [];
    const refused: Refused[] = [];
    const missing: Array<{ task: number; state: string; why: string }> = [];
    // What the merge needs of each task with results: its number, state, results key (and provenance).
    const withResults: Array<{ task: number; state: string; key: string; provenance?: string[] }> = [];
    let total = 0;
    for await (const page of backend.status.taskPages(a.name, 1000)) {
      for (const t of page) {
        total++;
        if (a.failed && t.state !== 'FAILED') continue;
        const row = taskRow({ ...t, costShare: taskShare(costs, t) } as TaskRecord, instances);
        await rows.add(row, t.tags);
        planTask(backend, a.name, t, out, plan, refused, a.failed);
        if (a.failed) continue;
        // (provenance only when asked for: 100,000 tasks without it keep nothing more than before)
        if (t.resultKey) withResults.push(a.withProvenance ? { task: t.task, state: t.state, key: t.resultKey, provenance: provenanceOf(row) } : { task: t.task, state: t.state, key: t.resultKey });
        else missing.push({ task: t.task, state: t.state, why: whyMissing(t, job.resultsPath) });
      }
    }
    if (refused.length) {
      throw new UserError(
        `Refusing to download ${refused.length} file${refused.length === 1 ? '' : 's'} of job ${a.name}: ${refused.length === 1 ? 'its key is' : 'their keys are'} not safe to write under ${out}. Nothing was downloaded.`,
        {
          details: [
            ...refused.slice(0, 20).map((r) => `task ${r.task}: ${JSON.stringify(r.key)}: ${r.why}`),
            ...(refused.length > 20 ? [`... and ${refused.length - 20} more`] : []),
          ],
          hint:
            'gq never records such keys itself: the status records or the artifact store were changed by something else. ' +
            'Remove those entries (or choose another --out if a symbolic link in it is the problem) and run gq results again.',
        },
      );
    }
    const lost = new Set<number>();
    const resultDest = new Map<number, string>();
    // A fixed number of downloads at a time, each streamed to its file: memory stays flat
    // whether there is one large file or 100,000 small ones.
    const bar = progressBar('Downloading', plan.length);
    await forEachLimited(plan, DOWNLOADS_AT_ONCE, async (f) => {
      try {
        const dest = destOf(a.name, out, f);
        await download(backend, f.key, dest);
        if (f.kind === 'result') resultDest.set(f.task, dest);
      } catch (e) {
        if (!(e instanceof ArtifactNotFoundError)) throw e;
        if (f.kind === 'result') lost.add(f.task);
        else ctx.io.err(`task ${f.task}: ${f.kind === 'log' ? 'its log' : `output ${f.key}`} is missing from the artifact store`);
      }
      bar.increment();
    }).finally(() => bar.stop());
    plan.length = 0;
    done = true; // from here on --out is ours to write in
    if (a.failed) return await writeFailed(ctx, a, out, rows);
    const files: ResultSource[] = [];
    for (const t of withResults) {
      const dest = resultDest.get(t.task);
      if (lost.has(t.task) || dest === undefined) {
        missing.push({ task: t.task, state: t.state, why: `its results file ${t.key} is missing from the artifact store` });
        continue;
      }
      const source: ResultSource = { task: t.task, open: () => openResult(dest), readSmall: () => readSmall(dest) };
      if (t.provenance) source.provenance = t.provenance;
      files.push(source);
    }
    withResults.length = 0;
    resultDest.clear();
    missing.sort((x, y) => x.task - y.task);
    const provenance = a.withProvenance ? PROVENANCE_COLUMNS : undefined;
    const { path: target, value: merged } = await writeFileUnder(out, 'results.csv', (w) => mergeResultsTo(files, w, { provenance }));
    const merges = files.length;
    files.length = 0; // not needed for tasks.csv: 100,000 of them are memory
    // tasks.csv's results_problem: what the merge found, and results a succeeded task should have had.
    const problems = new Map<number, string>();
    const note = (task: number, text: string) => problems.set(task, problems.has(task) ? `${problems.get(task)}; ${text}` : text);
    for (const m of missing) if (m.state === 'SUCCEEDED') note(m.task, m.why);
    for (const p of merged.problems) note(p.task, problemText(p));
    const { path: tasksCsv } = await writeFileUnder(out, 'tasks.csv', (w) => rows!.writeCsv(w, (task) => problems.get(task)));
    if (a.json) {
      ctx.io.out(JSON.stringify({ out, results: target, tasks: tasksCsv, rows: merged.rows, columns: merged.columns, missing, problems: merged.problems }));
    } else {
      ctx.io.out(`Wrote ${target}: ${merged.rows} rows from ${merges} of ${total} tasks; ${tasksCsv}: one row per task; per-task files under ${join(out, 'tasks')}/`);
      for (const m of missing.slice(0, 20)) ctx.io.out(`  task ${m.task}: no results (${m.state}): ${m.why}`);
      if (missing.length > 20) ctx.io.out(`  ... and ${missing.length - 20} more tasks without results`);
      for (const p of merged.problems.slice(0, 50)) ctx.io.out(`  task ${p.task}: results file ${problemText(p)}`);
      if (merged.problems.length > 50) ctx.io.out(`  ... and ${merged.problems.length - 50} more results problems (the results_problem column of ${tasksCsv})`);
    }
    return 0;
  } finally {
    rows?.abandon();
    if (spill) rmSync(spill, { force: true });
    if (!done && created) removeEmptyFolders(out, created);
    await backend.close();
  }
}

/** Remove `dir` and its parents up to `top` (the first folder mkdirSync made), as long as they are empty. */
function removeEmptyFolders(dir: string, top: string): void {
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return; // not empty (or gone): leave it
    }
    if (d === resolve(top)) return;
  }
}

/** --failed: the failed tasks' rows of tasks.csv and a job file of them. */
async function writeFailed(ctx: CommandContext, a: ResultsArgs, out: string, rows: TaskRows): Promise<number> {
  const { path: failedCsv } = await writeFileUnder(out, 'failed-tasks.csv', (w) => rows.writeCsv(w, () => undefined));
  const { path: jobFile } = await writeFileUnder(out, 'failed-jobs.csv', (w) => rows.writeJobFile(w));
  if (a.json) {
    ctx.io.out(JSON.stringify({ out, failed: rows.count, tasks: failedCsv, jobFile }));
  } else if (rows.count === 0) {
    ctx.io.out(`Job ${a.name} has no failed tasks; wrote an empty ${failedCsv} and ${jobFile}.`);
  } else {
    ctx.io.out(`Wrote ${failedCsv}: ${rows.count} failed task${rows.count === 1 ? '' : 's'}, logs under ${join(out, 'tasks')}/; job file ${jobFile}`);
    ctx.io.out(`  run them again: gq retry ${a.name} --failed   (same job), or: gq submit ${jobFile} --name <new name>`);
  }
  return 0;
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
