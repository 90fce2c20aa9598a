/**
 * Folder cli/src/results: merging and writing downloaded results safely under --out.
 *
 * Merging per-task result CSVs: first column `task`, then the union of the files' columns in the
 * order first seen, rows in task order. A result file's own column named "task" is kept as
 * "task_result". Output is a correct CSV whatever the fields contain. A file that is not valid CSV
 * (anywhere in it) adds neither columns nor rows, and is reported, as are empty files and files
 * with a header but no rows.
 *
 * Streamed, so that memory stays flat whatever the size or number of the files: the header row
 * comes first, and it is the union of every valid file's header, so each file is read twice:
 * once to check it and take its header (nothing kept but the header), once to copy its rows out.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, type Options as ParseOptions } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import { stringify } from 'csv-stringify';

export interface TaskResultFile {
  task: number;
  text: string;
}

/** One task's results file, opened afresh each time it is read (it is read twice). */
export interface ResultSource {
  task: number;
  open(): Readable;
  /**
   * The whole file at once, when it is small (at most SMALL_FILE_BYTES): parsed in one call
   * rather than streamed, which is the same parse at a fraction of the cost per file.
   */
  readSmall?(): Buffer | undefined;
}

/** A results file up to this size may be read whole (ResultSource.readSmall). */
export const SMALL_FILE_BYTES = 256 * 1024;

/** The file's records: parsed at once when small, else streamed. */
function records(source: ResultSource): AsyncIterable<string[]> | Iterable<string[]> {
  const whole = source.readSmall?.();
  if (whole !== undefined) return parseSync(whole, PARSE) as string[][];
  return source.open().pipe(parse(PARSE)) as AsyncIterable<string[]>;
}

export interface MergeProblem {
  task: number;
  message: string;
}

export interface MergeSummary {
  columns: string[];
  rows: number;
  problems: MergeProblem[];
}

export interface Merged extends MergeSummary {
  csv: string;
}

const PARSE: ParseOptions = { bom: true, relax_column_count: false, skip_empty_lines: true };

/** A file that passed the first read: its header (renamed) and how many rows follow it. */
interface Checked {
  source: ResultSource;
  header: string[];
  rows: number;
}

/** First read: is the file valid CSV, what is its header, how many rows has it. */
async function check(source: ResultSource): Promise<Checked | MergeProblem> {
  let header: string[] | undefined;
  let rows = 0;
  try {
    for await (const rec of records(source)) {
      if (header === undefined) header = rec.map((h) => (h === 'task' ? 'task_result' : h));
      else rows++;
    }
  } catch (e) {
    return { task: source.task, message: `results file is not valid CSV: ${(e as Error).message}` };
  }
  if (header === undefined) return { task: source.task, message: 'results file is empty' };
  return { source, header, rows };
}

/** Second read: the file's rows laid out on the merged columns. */
async function* rowsOf(c: Checked, position: ReadonlyMap<string, number>, width: number): AsyncGenerator<string[]> {
  // Where each output column comes from in this file (a name twice in one header: the last wins).
  const from = new Array<number>(width).fill(-1);
  c.header.forEach((h, i) => {
    from[position.get(h)!] = i;
  });
  const task = String(c.source.task);
  let first = true;
  for await (const rec of records(c.source)) {
    if (first) {
      first = false;
      continue;
    }
    const out = new Array<string>(width);
    out[0] = task;
    for (let k = 1; k < width; k++) out[k] = from[k]! >= 0 ? (rec[from[k]!] ?? '') : '';
    yield out;
  }
}

/** Merge `sources` (any order) into `out`, which is ended. */
export async function mergeResultsTo(sources: readonly ResultSource[], out: Writable): Promise<MergeSummary> {
  const columns: string[] = [];
  const position = new Map<string, number>([['task', 0]]);
  const problems: MergeProblem[] = [];
  const valid: Checked[] = [];
  // Files mostly share one header: kept once, not once per file.
  const headers = new Map<string, string[]>();
  for (const s of [...sources].sort((a, b) => a.task - b.task)) {
    const c = await check(s);
    if (!('source' in c)) {
      problems.push(c);
      continue;
    }
    const id = JSON.stringify(c.header);
    c.header = headers.get(id) ?? (headers.set(id, c.header), c.header);
    for (const h of c.header) {
      if (!position.has(h)) {
        position.set(h, columns.length + 1);
        columns.push(h);
      }
    }
    if (c.rows === 0) problems.push({ task: s.task, message: 'results file has a header but no rows' });
    else valid.push(c);
  }
  const all = ['task', ...columns];
  let rows = 0;
  async function* merged(): AsyncGenerator<string[]> {
    for (const c of valid) {
      for await (const r of rowsOf(c, position, all.length)) {
        rows++;
        yield r;
      }
    }
  }
  await pipeline(Readable.from(merged()), stringify({ header: true, columns: all, record_delimiter: '\n' }), out);
  return { columns: all, rows, problems };
}

/** The same merge of in-memory files, as a string (small inputs and tests). */
export async function mergeResults(files: readonly TaskResultFile[]): Promise<Merged> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  const summary = await mergeResultsTo(
    files.map((f) => ({ task: f.task, open: () => Readable.from([Buffer.from(f.text, 'utf8')]) })),
    sink,
  );
  return { ...summary, csv: Buffer.concat(chunks).toString('utf8') };
}
