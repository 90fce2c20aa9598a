/**
 * Folder cli/src/results: merging and writing downloaded results safely under --out.
 *
 * Merging per-task result CSVs: first column `task` (then, with provenance, gq's `gq_*` columns),
 * then the union of the files' columns in the order first seen, rows in task order. Every value a
 * file holds is kept: names are made unique by the rule in columns.ts (a file's own `task` column
 * becomes `task_result`, a repeated `x` becomes `x_2`, values past the header go to `column_<n>`).
 * Output is a correct CSV whatever the fields contain.
 *
 * Problems are reported per file with the line they are on, and cost only that file's bad part:
 * - a row with fewer fields than the header is kept, the missing ones empty; one with more is kept,
 *   the extra values in `column_<n>` columns; each such row is reported (the first few per file);
 * - a file that stops being valid CSV (a quote never closed, text after a closing quote) keeps the
 *   rows before the broken record; the rest of it is dropped and reported;
 * - an empty file, and a file with a header but no rows, add no rows and are reported.
 *
 * Streamed, so that memory stays flat whatever the size or number of the files: the header row
 * comes first, and it is the union of every valid file's header, so each file is read twice:
 * once to check it and take its header, once to copy its rows out. The sources are walked twice
 * too (a function gives them afresh, in task order), and nothing is kept per file between the
 * two walks but for large files (their layout: a few per task at most, and few tasks have one):
 * a small file's layout is found again by the one parse that copies its rows.
 */
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { CsvError, parse, type Options as ParseOptions } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import { stringify } from 'csv-stringify';
import { Columns } from './columns.js';

export interface TaskResultFile {
  task: number;
  text: string;
  provenance?: readonly string[];
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
  /** With MergeOptions.provenance: this task's values of those columns. */
  provenance?: readonly string[];
}

export interface MergeOptions {
  /** gq's own columns written after `task` on every row (each source gives its values). */
  provenance?: readonly string[];
}

/** A results file up to this size may be read whole (ResultSource.readSmall). */
export const SMALL_FILE_BYTES = 256 * 1024;

interface Rec {
  record: string[];
  info: { lines: number };
}

/**
 * A file's records streamed, with the line each ends on, the first `to` of them at most, in
 * batches (one per chunk read: a promise per batch, not per record). Small files are parsed at
 * once instead (smallRecords).
 * A CsvError is raised where the file stops being valid CSV, after every record before it
 * (csv-parse's stream would drop those it had not handed on yet).
 */
async function* records(source: ResultSource, to = Infinity): AsyncGenerator<Rec[]> {
  if (to <= 0) return;
  let n = 0;
  for await (const batch of allRecords(source)) {
    if (!batch.length) continue;
    yield n + batch.length > to ? batch.slice(0, to - n) : batch;
    n += batch.length;
    if (n >= to) return; // before asking for more: the next could be the error
  }
}

async function* allRecords(source: ResultSource): AsyncGenerator<Rec[]> {
  // Records are taken from 'data' events, which csv-parse emits while it parses each chunk
  // written to it (never paused, so nothing waits in its buffer): those before a parse error
  // are all seen, with the line each ends on.
  let got: Rec[] = [];
  const take = (): Rec[] => {
    const t = got;
    got = [];
    return t;
  };
  const input = source.open();
  const parser = parse(PARSE);
  parser.on('data', (record: string[]) => got.push({ record, info: { lines: parser.info.lines } }));
  parser.on('error', () => {}); // raised below, through the write callbacks and finished()
  try {
    for await (const chunk of input) {
      const err = await new Promise<Error | null | undefined>((res) => parser.write(chunk, res));
      yield take();
      if (err) throw err;
    }
    parser.end();
    try {
      await finished(parser);
    } finally {
      yield take();
    }
  } finally {
    input.destroy(); // stopped early or by an error: the file is closed all the same
    parser.destroy();
  }
}

export interface MergeProblem {
  task: number;
  /** The line of the file the problem is on (1 = the first line), when there is one. */
  line?: number;
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

const PARSE: ParseOptions = { bom: true, relax_column_count: true, skip_empty_lines: true };

/** Ragged rows reported per file; the rest are counted. */
const RAGGED_REPORTED = 5;

/** A file that passed the first read: its header, its widest row and how many good rows follow. */
interface Checked {
  header: string[];
  width: number;
  rows: number;
  /** Whether it was read whole (ResultSource.readSmall), not streamed. */
  small: boolean;
}

/** What the second read of a file needs: its columns in the merged file (columns.ts) and how many good rows it has. */
interface Layout {
  names: readonly string[];
  rows: number;
}

/** Line breaks inside a record's fields (so the line it starts on = the line it ends on − these). */
function breaksIn(record: readonly string[]): number {
  let n = 0;
  for (const f of record) n += f.match(/\r\n|\r|\n/g)?.length ?? 0;
  return n;
}

/** What a CsvError says, in a few words. */
function csvProblem(e: CsvError): string {
  switch (e.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field is never closed';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'text follows the closing quote of a field';
    case 'INVALID_OPENING_QUOTE':
      return 'a quote opens inside an unquoted field';
    default:
      return e.message;
  }
}

/** What the first read of a file found. */
interface Scan {
  header?: string[];
  width: number;
  rows: number;
  lastLine: number;
  ragged: MergeProblem[];
  raggedCount: number;
  /** Where the file stopped being valid CSV. */
  error?: CsvError;
}

const newScan = (): Scan => ({ width: 0, rows: 0, lastLine: 0, ragged: [], raggedCount: 0 });

/** One read of the whole file; a CsvError ends it (in `error`), with what came before it counted. */
async function scan(source: ResultSource): Promise<Scan & { small: boolean }> {
  const whole = source.readSmall?.();
  if (whole !== undefined) return { ...scanSmall(source, whole), small: true };
  const r: Scan & { small: boolean } = { ...newScan(), small: false };
  try {
    await scanInto(source, r);
  } catch (e) {
    if (!(e instanceof CsvError)) throw e;
    r.error = e;
  }
  return r;
}

async function scanInto(source: ResultSource, r: Scan): Promise<void> {
  for await (const batch of records(source)) for (const { record: rec, info } of batch) scanRecord(source, r, rec, info.lines);
}

/**
 * A small file's records (ResultSource.readSmall) parsed at once, the first `to` at most, and where
 * it broke if it did; with the line each ends on only when asked (it costs an object a record).
 */
function smallRecords(whole: Buffer, withLines: boolean, to?: number): { recs: Rec[] | string[][]; error?: CsvError } {
  const opts: ParseOptions = { ...PARSE, info: withLines, ...(to === undefined ? {} : { to }) };
  try {
    return { recs: parseSync(whole, opts) as unknown as Rec[] | string[][] };
  } catch (e) {
    if (!(e instanceof CsvError)) throw e;
    // The records before the broken one, parsed again up to it (a broken file is rare).
    const good = Number(e.records);
    return { recs: good > 0 ? (parseSync(whole, { ...opts, to: good }) as unknown as Rec[] | string[][]) : [], error: e };
  }
}

/** The first read of a small file: without line numbers, and again with them only if it has a problem. */
function scanSmall(source: ResultSource, whole: Buffer, withLines = false): Scan {
  const r = newScan();
  const { recs, error } = smallRecords(whole, withLines);
  for (const x of recs) {
    if (withLines) scanRecord(source, r, (x as Rec).record, (x as Rec).info.lines);
    else scanRecord(source, r, x as string[], 0);
  }
  r.error = error;
  if (!withLines && (error || r.raggedCount > 0)) return scanSmall(source, whole, true);
  return r;
}

/** One record of the first read: the header, or a row (counted; reported when ragged). */
function scanRecord(source: ResultSource, r: Scan, rec: string[], line: number): void {
  r.lastLine = line;
  const header = r.header;
  if (header === undefined) {
    r.header = rec;
    r.width = rec.length;
    return;
  }
  r.rows++;
  if (rec.length === header.length) return;
  r.width = Math.max(r.width, rec.length);
  if (r.raggedCount++ >= RAGGED_REPORTED) return;
  const kept =
    rec.length > header.length
      ? `the extra values in column_${header.length + 1}${rec.length > header.length + 1 ? `..column_${rec.length}` : ''}`
      : 'the missing values empty';
  r.ragged.push({
    task: source.task,
    line: line - breaksIn(rec),
    message: `not valid CSV: the row has ${rec.length} fields and the header ${header.length}; kept, ${kept}`,
  });
}

/** First read: the header, the widest row, the good rows; every problem of the file (to `problems`). */
async function check(source: ResultSource, problems: MergeProblem[]): Promise<Checked | undefined> {
  const task = source.task;
  const r = await scan(source);
  const e = r.error;
  // What comes before the broken record is kept.
  const broken: MergeProblem | undefined = e && {
    task,
    line: e.code === 'CSV_QUOTE_NOT_CLOSED' ? r.lastLine + 1 : Number(e.lines),
    message: `not valid CSV: ${csvProblem(e)}; kept the ${r.rows} row${r.rows === 1 ? '' : 's'} before it, dropped the rest of the file`,
  };
  problems.push(...r.ragged);
  if (r.raggedCount > RAGGED_REPORTED) {
    problems.push({ task, message: `not valid CSV: ${r.raggedCount - RAGGED_REPORTED} more rows with another number of fields than the header (kept)` });
  }
  if (broken) problems.push(broken);
  if (r.header === undefined) {
    if (!broken) problems.push({ task, message: 'results file is empty' });
    return undefined;
  }
  if (r.rows === 0 && !broken) problems.push({ task, message: 'results file has a header but no rows' });
  return { header: r.header, width: r.width, rows: r.rows, small: r.small };
}

/** Lays a file's records out on the merged columns: `task`, its provenance, then its values where its names go. */
function rowMaker(task: number, provenance: readonly string[] | undefined, names: readonly string[], cols: Columns, width: number): (rec: string[]) => string[] {
  const from = new Array<number>(width).fill(-1);
  // (a name unknown to the first read: the file changed between the reads; its values are left out)
  names.forEach((h, i) => {
    const at = cols.position.get(h);
    if (at !== undefined) from[at] = i;
  });
  const t = String(task);
  const prov = provenance ?? [];
  const fixed = cols.fixed.length;
  return (rec) => {
    const out = new Array<string>(width);
    out[0] = t;
    for (let k = 1; k < fixed; k++) out[k] = prov[k - 1] ?? '';
    for (let k = fixed; k < width; k++) out[k] = from[k]! >= 0 ? (rec[from[k]!] ?? '') : '';
    return out;
  };
}

/**
 * Second read: the file's good rows laid out on the merged columns. A small file is parsed once
 * more and its layout found from it (the same parse as the first read gives the same header, width
 * and good rows); a large one's layout was kept by the first read.
 */
async function* rowsOf(source: ResultSource, large: ReadonlyMap<number, Layout>, cols: Columns, width: number): AsyncGenerator<string[]> {
  const whole = source.readSmall?.();
  if (whole !== undefined) {
    const recs = smallRecords(whole, false).recs as string[][];
    if (recs.length < 2) return;
    let w = 0;
    for (const r of recs) w = Math.max(w, r.length);
    const row = rowMaker(source.task, source.provenance, cols.namesOf(recs[0]!, w, false), cols, width);
    for (let i = 1; i < recs.length; i++) yield row(recs[i]!);
    return;
  }
  const layout = large.get(source.task);
  if (!layout) return;
  const row = rowMaker(source.task, source.provenance, layout.names, cols, width);
  let first = true;
  for await (const batch of records(source, layout.rows + 1)) {
    for (const { record: rec } of batch) {
      if (first) first = false;
      else yield row(rec);
    }
  }
}

/** The sources in task order, each walk afresh: an array (sorted here) or a function that gives them in task order. */
export type ResultSources = readonly ResultSource[] | (() => AsyncIterable<ResultSource> | Iterable<ResultSource>);

/** Merge `sources` into `out`, which is ended. */
export async function mergeResultsTo(sources: ResultSources, out: Writable, opts: MergeOptions = {}): Promise<MergeSummary> {
  const walk = typeof sources === 'function' ? sources : ((sorted) => () => sorted)([...sources].sort((a, b) => a.task - b.task));
  const cols = new Columns(['task', ...(opts.provenance ?? [])]);
  const problems: MergeProblem[] = [];
  const large = new Map<number, Layout>();
  let last = -Infinity;
  for await (const s of walk()) {
    if (s.task <= last) throw new Error(`merge sources out of task order: task ${s.task} after ${last}`);
    last = s.task;
    const c = await check(s, problems);
    if (!c) continue;
    const names = cols.namesOf(c.header, c.width, true);
    if (!c.small && c.rows > 0) large.set(s.task, { names, rows: c.rows });
  }
  const all = cols.all;
  let rows = 0;
  async function* merged(): AsyncGenerator<string[]> {
    for await (const s of walk()) {
      for await (const r of rowsOf(s, large, cols, all.length)) {
        rows++;
        yield r;
      }
    }
  }
  await pipeline(Readable.from(merged()), stringify({ header: true, columns: all, record_delimiter: '\n' }), out);
  return { columns: all, rows, problems };
}

/** The same merge of in-memory files, as a string (small inputs and tests). */
export async function mergeResults(files: readonly TaskResultFile[], opts: MergeOptions = {}): Promise<Merged> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  const summary = await mergeResultsTo(
    files.map((f) => ({ task: f.task, provenance: f.provenance, open: () => Readable.from([Buffer.from(f.text, 'utf8')]) })),
    sink,
    opts,
  );
  return { ...summary, csv: Buffer.concat(chunks).toString('utf8') };
}
