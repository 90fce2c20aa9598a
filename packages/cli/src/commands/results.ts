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
import { forEachLimited, Spill } from '../results/spill.js';
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

/** One file to download: its kind and artifact key (where it goes under --out follows from them: destOf). */
type Planned = [kind: 'result' | 'output' | 'log', key: string];

/**
 * A task as the download plan holds it (one JSON line of the plan's spill file): its number and
 * state, its files, and (--with-provenance) its provenance values.
 */
interface PlannedTask {
  task: number;
  state: TaskRecord['state'];
  files: Planned[];
  provenance?: string[];
}

/** Where a task's file goes, relative to --out: `rel` is the key after the task's files/ prefix. */
const destRel = (task: number, kind: Planned[0], rel: string): string => `tasks/${task}/${kind === 'log' ? 'log.txt' : rel}`;

/** The path a planned file is written to: checked again (planTask checked it first) as it is written. */
function destOf(job: string, out: string, task: number, [kind, key]: Planned): string {
  const filesPrefix = keys.taskPrefix(job, task) + 'files/';
  return pathUnder(out, destRel(task, kind, kind === 'log' ? '' : key.slice(filesPrefix.length)));
}

/** Refusals shown in full; the rest are counted. */
const REFUSALS_SHOWN = 20;

/** The keys gq refuses to download: the first few, with why, and how many in all. */
class Refused {
  readonly shown: string[] = [];
  count = 0;

  add(task: number, key: string, why: string): void {
    if (this.count++ < REFUSALS_SHOWN) this.shown.push(`task ${task}: ${JSON.stringify(key)}: ${why}`);
  }
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
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) return undefined; // missing: reported when downloading
    if (st.isSymbolicLink()) return cur;
  }
  return undefined;
}

/**
 * Where each of the task's files goes, or why it is refused. A task's files must be its own
 * (keys under jobs/<job>/tasks/<task>/), and each must land under --out/tasks/<task>/.
 */
function planTask(backend: Backend, job: string, t: TaskRecord, out: string, refused: Refused, logOnly = false): Planned[] {
  const taskDir = join(out, 'tasks', String(t.task));
  const own = keys.taskPrefix(job, t.task);
  const filesPrefix = own + 'files/';
  const plan: Planned[] = [];
  const add = (key: string, kind: Planned[0], rel: string | undefined) => {
    if (rel === undefined) {
      refused.add(t.task, key, `it is not one of the task's own files (they are under ${kind === 'log' ? own : filesPrefix})`);
      return;
    }
    if (!safeRelative(rel)) {
      refused.add(t.task, key, `${whyUnsafe(rel)}, so it would be written outside ${taskDir}`);
      return;
    }
    const link = localLinkOnTheWay(backend, key);
    if (link) {
      refused.add(t.task, key, `the artifact folder holds a symbolic link at ${link}`);
      return;
    }
    try {
      // Checked from --out itself down, so that a link anywhere below it (tasks/, tasks/<n>/, ...) is seen.
      pathUnder(out, destRel(t.task, kind, rel));
      plan.push([kind, key]);
    } catch (e) {
      const why =
        e instanceof SymlinkOnPathError
          ? `the output folder holds a symbolic link at ${e.link}, which could point anywhere`
          : e instanceof UserError
            ? e.message.replace(/\.$/, '')
            : String(e);
      refused.add(t.task, key, why);
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
  return plan;
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
  let plan: Spill<PlannedTask> | undefined;
  const spills: string[] = [];
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
    // The tasks.csv rows and the download plan wait in spill files in --out; a refusal below
    // takes them (and any folder made for them) away again, so that a refused command leaves nothing behind.
    created = mkdirSync(out, { recursive: true });
    const spill = (name: string): string => {
      const file = pathUnder(out, name);
      rmSync(file, { force: true });
      spills.push(file);
      return file;
    };
    rows = new TaskRows(spill('.tasks.csv.gq-rows'));
    plan = new Spill<PlannedTask>(spill('.plan.gq-rows'));
    // Pass 1: the task records (commands and all) are read a page at a time; each task's tasks.csv
    // row and its files go to the spill files, so what is held does not grow with the number of tasks.
    // Every destination is checked before the first byte is written: a store holding a key that
    // would land outside --out (or read through a link) gets nothing downloaded at all.
    const refused = new Refused();
    // Tasks without results (and why): only those, so a job whose tasks all wrote results holds none.
    const missing: Array<{ task: number; state: string; why: string }> = [];
    let total = 0;
    let planned = 0;
    let withResult = 0;
    for await (const page of backend.status.taskPages(a.name, 1000)) {
      for (const t of page) {
        total++;
        if (a.failed && t.state !== 'FAILED') continue;
        const row = taskRow({ ...t, costShare: taskShare(costs, t) } as TaskRecord, instances);
        await rows.add(row, t.tags);
        const files = planTask(backend, a.name, t, out, refused, a.failed);
        planned += files.length;
        if (files.some((f) => f[0] === 'result')) withResult++;
        await plan.add(a.withProvenance ? { task: t.task, state: t.state, files, provenance: provenanceOf(row) } : { task: t.task, state: t.state, files });
        if (!a.failed && !t.resultKey) missing.push({ task: t.task, state: t.state, why: whyMissing(t, job.resultsPath) });
      }
    }
    if (refused.count) {
      const n = refused.count;
      throw new UserError(
        `Refusing to download ${n} file${n === 1 ? '' : 's'} of job ${a.name}: ${n === 1 ? 'its key is' : 'their keys are'} not safe to write under ${out}. Nothing was downloaded.`,
        {
          details: [...refused.shown, ...(n > REFUSALS_SHOWN ? [`... and ${n - REFUSALS_SHOWN} more`] : [])],
          hint:
            'gq never records such keys itself: the status records or the artifact store were changed by something else. ' +
            'Remove those entries (or choose another --out if a symbolic link in it is the problem) and run gq results again.',
        },
      );
    }
    // Pass 2: a fixed number of downloads at a time, each streamed to its file, the plan read back
    // as they go: memory stays flat whether there is one large file or 100,000 small ones.
    const lost = new Set<number>();
    const bar = progressBar('Downloading', planned);
    await forEachLimited(plan.values(), DOWNLOADS_AT_ONCE, async (t) => {
      for (const f of t.files) {
        try {
          // (getFile writes through a temporary name and renames it, making the folder: a file
          // appears whole or not at all, so running gq results again is safe)
          await backend.artifacts.getFile(f[1], destOf(a.name, out, t.task, f));
        } catch (e) {
          if (!(e instanceof ArtifactNotFoundError)) throw e;
          if (f[0] === 'result') {
            lost.add(t.task);
            missing.push({ task: t.task, state: t.state, why: `its results file ${f[1]} is missing from the artifact store` });
          } else ctx.io.err(`task ${t.task}: ${f[0] === 'log' ? 'its log' : `output ${f[1]}`} is missing from the artifact store`);
        }
        bar.increment();
      }
    }).finally(() => bar.stop());
    done = true; // from here on --out is ours to write in
    if (a.failed) return await writeFailed(ctx, a, out, rows);
    missing.sort((x, y) => x.task - y.task);
    // Pass 3: the merge walks the plan twice (it reads each results file twice), in task order.
    const downloads = plan;
    async function* downloaded(): AsyncGenerator<ResultSource> {
      for await (const t of downloads.values()) {
        const f = t.files.find((x) => x[0] === 'result');
        if (!f || lost.has(t.task)) continue;
        const dest = destOf(a.name, out, t.task, f);
        const source: ResultSource = { task: t.task, open: () => openResult(dest), readSmall: () => readSmall(dest) };
        if (t.provenance) source.provenance = t.provenance;
        yield source;
      }
    }
    const provenance = a.withProvenance ? PROVENANCE_COLUMNS : undefined;
    const { path: target, value: merged } = await writeFileUnder(out, 'results.csv', (w) => mergeResultsTo(downloaded, w, { provenance }));
    const merges = withResult - lost.size;
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
    plan?.abandon();
    for (const f of spills) rmSync(f, { force: true });
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
