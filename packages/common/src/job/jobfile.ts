/**
 * The job file (`jobdetails.csv`): parsing and validation.
 *
 * Format: UTF-8 CSV text, a header line naming the two columns `instance_type` and `command`,
 * then one task per line:
 *
 *     instance_type,command
 *     t3.micro,python run.py --seed 1
 *     c5.2xlarge,"python run.py --label ""a,b"""
 *
 * Rules (decided here, shown to users by the error messages):
 * - CSV as in RFC 4180: a field that starts with `"` is quoted; inside it `""` is a quote, and
 *   commas and line breaks are kept. A quote *inside* an unquoted field is kept as-is (so
 *   `t3.micro,echo "hi"` works, as it does with Python's csv module and Excel). After the closing
 *   quote of a quoted field only a comma or the end of the line may follow.
 * - Lines end with LF, CRLF or a lone CR (mixed endings are fine). A UTF-8 byte order mark is
 *   skipped. A trailing newline is optional. Inside a quoted field CRLF becomes LF.
 * - The header names are matched case-insensitively with surrounding whitespace trimmed, and may
 *   come in either order. Extra or duplicate columns are an error.
 * - Blank lines (empty, only whitespace, or only commas and whitespace as spreadsheets write
 *   them) are skipped anywhere. They do not get a task number, but every error message uses the
 *   physical line number in the file (line 1 = first line, counting blank lines and the lines of
 *   multi-line quoted commands).
 * - `task` is the 1-based number of the row among the data rows: with no blank lines, file line 2
 *   is task 1.
 * - The instance type is trimmed; it must be an EC2 instance type (`family.size`, lower case) or
 *   `local`. The command is kept exactly as written (no trimming) and must not be empty, only
 *   whitespace, contain a NUL byte, or be longer than MAX_COMMAND_BYTES.
 * - Every row is checked; all problems are reported together in one JobFileError (a UserError).
 *   A row with a quote problem (text after the closing quote of a quoted field) is reported
 *   without further checks; csv-parse reads on after such a quote as if the field were unquoted,
 *   so a later quote on the same line can open a quoted field that runs into the next lines. A
 *   quote that is never closed makes the rest of the file one field, so it is the last problem
 *   reported, together with those found before it.
 *
 * The CSV is read by csv-parse (see readCsv for how: in pieces, with line numbers counted here,
 * and a second, strict look at records that may hold a malformed quoted field). It costs about
 * 2.5 s of CPU time for 1,000,000 rows on a 2-core machine, against 0.5 s for the hand-written
 * scanner it replaced. test/jobfile.test.ts checks it against csv-stringify with random commands.
 */
import { isUtf8 } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import { CsvError, parse, type CsvErrorCode, type Options as CsvOptions } from 'csv-parse/sync';
import { GqError, UserError } from '../errors.js';
import type { BackendName, NewTask } from './model.js';

/**
 * Largest command, in UTF-8 bytes: 128 KiB − 1. The agent runs a command as one argument of
 * `sh -c`, and Linux refuses a single argument of 128 KiB or more (MAX_ARG_STRLEN, counted with
 * its terminating NUL) with E2BIG. It also keeps a task record well under DynamoDB's 400 KB
 * item limit. Longer commands belong in a script in the code folder.
 */
export const MAX_COMMAND_BYTES = 128 * 1024 - 1;

/**
 * Largest job file, in bytes (200 MiB). Bigger files are refused before they are read. A file is
 * read whole: a 50 MB file of 1,000,000 tasks takes about 0.2 GB of memory while it is parsed.
 */
export const MAX_JOB_FILE_BYTES = 200 * 1024 * 1024;

/**
 * Longest instance type: queue names are `gq-<job>-<instance type>-dlq`, at most 80 characters,
 * with a job name of at most 40. The longest real one (`u7in-32tb.224xlarge`) has 19.
 */
export const MAX_INSTANCE_TYPE_LENGTH = 32;

/** The two columns of a job file, in the usual order. */
export const JOB_FILE_HEADER = 'instance_type,command';

/** Problems listed in a JobFileError unless the caller asks for another number. */
export const DEFAULT_MAX_JOB_FILE_PROBLEMS = 20;

/** One problem found in a job file. */
export interface JobFileProblem {
  /** Physical line in the file (1-based); 0 when the problem is about the whole file. */
  line: number;
  /** The column the problem is in (`instance_type` or `command`), when it is about one. */
  column?: string;
  message: string;
  /** How to fix it. */
  hint: string;
}

export interface ParseJobOptions {
  /** Problems listed in the error (default 20); the others are only counted. */
  maxProblems?: number;
  /**
   * The backend the job is for. With 'aws' the instance type `local` is refused; without a
   * backend both `local` and EC2 instance types are accepted.
   */
  backend?: BackendName;
}

/** A job file that cannot be used, with every problem found in it. */
export class JobFileError extends UserError {
  /** The file as it was named to the parser. */
  readonly file: string;
  /** The first `maxProblems` problems, in file order. */
  readonly problems: readonly JobFileProblem[];
  /** The number of problems found, listed or not. */
  readonly problemCount: number;

  constructor(file: string, problems: readonly JobFileProblem[], problemCount: number) {
    const n = problemCount;
    const details = problems.map((p) => formatJobFileProblem(file, p));
    if (n > problems.length) {
      const more = n - problems.length;
      details.push(`... and ${more} more problem${more === 1 ? '' : 's'}`);
    }
    super(`The job file ${file} has ${n} problem${n === 1 ? '' : 's'}.`, {
      details,
      hint:
        `Fix ${n === 1 ? 'it' : 'them'} and try again. A job file is UTF-8 CSV text: the header line ` +
        `${JOB_FILE_HEADER}, then one task per line, e.g. t3.micro,python run.py --seed 1`,
    });
    this.file = file;
    this.problems = problems;
    this.problemCount = problemCount;
  }
}

/** `file:line: column "x": message — hint` (no line number for whole-file problems). */
export function formatJobFileProblem(file: string, p: JobFileProblem): string {
  const where = p.line > 0 ? `${file}:${p.line}:` : `${file}:`;
  const column = p.column ? ` column "${p.column}":` : '';
  return `${where}${column} ${p.message} — ${p.hint}`;
}

// ---------------------------------------------------------------------------------------------
// Instance types

const FAMILY = String.raw`(?:u-\d+tb\d+|[a-z]+\d+[a-z0-9]*(?:-[a-z0-9]+)*)`;
const SIZE = String.raw`(?:nano|micro|small|medium|large|xlarge|[1-9]\d*xlarge|metal(?:-[1-9]\d*xl)?)`;
const EC2_INSTANCE_TYPE = new RegExp(`^${FAMILY}\\.${SIZE}$`);
const FAMILY_ONLY = new RegExp(`^${FAMILY}$`);
const SIZE_ONLY = new RegExp(`^${SIZE}$`);
const SIZE_WORDS = ['nano', 'micro', 'small', 'medium', 'large', 'xlarge', 'metal'];

/** The instance type that runs tasks on the submitting machine (local backend). */
export const LOCAL_INSTANCE_TYPE = 'local';

/** Whether `s` is written like an EC2 instance type: `family.size` in lower case (t3.micro, m7i-flex.large, u-6tb1.metal). */
export function isEc2InstanceType(s: string): boolean {
  return s.length <= MAX_INSTANCE_TYPE_LENGTH && EC2_INSTANCE_TYPE.test(s);
}

/**
 * Whether a job file accepts `s` as an instance type: an EC2 instance type or `local`. (Only the
 * syntax is checked; whether the type exists in a region is for the AWS backend to say.)
 */
export function isValidInstanceType(s: string): boolean {
  return s === LOCAL_INSTANCE_TYPE || isEc2InstanceType(s);
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** A valid size close to `size` (a typo such as `smal`, `xxlarge`, `2xl`), if there is one. */
function fixSize(size: string): string | undefined {
  if (SIZE_ONLY.test(size)) return size;
  const xs = /^(x{2,})l(?:arge?)?$/.exec(size);
  if (xs?.[1]) return `${xs[1].length}xlarge`;
  const xl = /^([1-9]\d*)?x(?:l|lg|lrg|large?)$/.exec(size);
  if (xl) return `${xl[1] ?? ''}xlarge`;
  const m = /^([1-9]\d*)(.*)$/.exec(size);
  if (m?.[1] && m[2] !== undefined && levenshtein(m[2], 'xlarge') <= 2) return `${m[1]}xlarge`;
  let best: string | undefined;
  let bestDistance = 3;
  for (const w of SIZE_WORDS) {
    const d = levenshtein(size, w);
    if (d < bestDistance) {
      best = w;
      bestDistance = d;
    }
  }
  return best;
}

/** `family.size` with a fixable size, if the family part is sound. */
function fixDotted(s: string): string | undefined {
  const dot = s.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const family = s.slice(0, dot);
  if (!FAMILY_ONLY.test(family)) return undefined;
  const size = fixSize(s.slice(dot + 1));
  const fixed = size === undefined ? undefined : `${family}.${size}`;
  return fixed !== undefined && isEc2InstanceType(fixed) ? fixed : undefined;
}

/**
 * A guess at the instance type meant by a malformed one (`T2.Small` → `t2.small`, `t2small` →
 * `t2.small`, `t3_micro` → `t3.micro`, `m5.xxlarge` → `m5.2xlarge`, `Local` → `local`), or
 * undefined when nothing close is valid.
 */
export function suggestInstanceType(raw: string): string | undefined {
  const s = raw.trim().toLowerCase().replace(/\s+/g, '');
  if (!s || s.length > 64) return undefined;
  if (isValidInstanceType(s)) return s === raw ? undefined : s;
  if (s.startsWith(LOCAL_INSTANCE_TYPE) || levenshtein(s, LOCAL_INSTANCE_TYPE) <= 1) return LOCAL_INSTANCE_TYPE;
  // Stray dots: `t2..small`, `t2.small.`, `.t2.small`.
  const dots = s.replace(/\.{2,}/g, '.').replace(/^\.+|\.+$/g, '');
  if (dots !== s && isEc2InstanceType(dots)) return dots;
  // Another separator instead of the dot: `t2_small`, `t2-small`, `t2:small`, `m7i-flex-large`.
  if (!dots.includes('.')) {
    for (let i = dots.length - 1; i > 0; i--) {
      if ('_-,:;/\\'.includes(dots[i] ?? '')) {
        const c = `${dots.slice(0, i)}.${dots.slice(i + 1)}`;
        const fixed = isEc2InstanceType(c) ? c : fixDotted(c);
        if (fixed) return fixed;
      }
    }
    // No dot at all: `t2small`, `c5n2xlarge`. Prefer the longest valid size.
    for (let i = 1; i < dots.length; i++) {
      const c = `${dots.slice(0, i)}.${dots.slice(i)}`;
      if (isEc2InstanceType(c)) return c;
    }
    return undefined;
  }
  return fixDotted(dots);
}

// ---------------------------------------------------------------------------------------------
// Bytes → text

interface Sniffed {
  message: string;
  hint: string;
}

function startsWith(buf: Uint8Array, bytes: readonly number[]): boolean {
  return bytes.every((b, i) => buf[i] === b);
}

/** Recognises files that are certainly not a UTF-8 CSV: other encodings, archives, spreadsheets. */
function sniffFormat(buf: Uint8Array, file: string): Sniffed | undefined {
  const utf16 = {
    message: 'the file is UTF-16 text, not UTF-8',
    hint: `save it as UTF-8 (in Excel: "CSV UTF-8"), or convert it: iconv -f UTF-16 -t UTF-8 ${file} > jobdetails-utf8.csv`,
  };
  if (startsWith(buf, [0xff, 0xfe]) || startsWith(buf, [0xfe, 0xff])) return utf16;
  if (startsWith(buf, [0x50, 0x4b, 0x03, 0x04])) {
    return {
      message: 'the file is a ZIP archive (an Excel .xlsx workbook?), not CSV text',
      hint: 'in Excel use File › Save As › "CSV UTF-8 (Comma delimited)" and give gq that file',
    };
  }
  if (startsWith(buf, [0xd0, 0xcf, 0x11, 0xe0])) {
    return {
      message: 'the file is an Excel .xls workbook, not CSV text',
      hint: 'in Excel use File › Save As › "CSV UTF-8 (Comma delimited)" and give gq that file',
    };
  }
  if (startsWith(buf, [0x1f, 0x8b])) {
    return { message: 'the file is gzip-compressed', hint: `decompress it first: gunzip -k ${file}` };
  }
  // UTF-16 without a byte order mark: every other byte is 0 in mostly-ASCII text.
  const pairs = Math.min(buf.length, 4096) >> 1;
  if (pairs >= 4) {
    let zeroEven = 0;
    let zeroOdd = 0;
    for (let i = 0; i < pairs; i++) {
      if (buf[2 * i] === 0) zeroEven++;
      if (buf[2 * i + 1] === 0) zeroOdd++;
    }
    if ((zeroOdd > pairs * 0.4 && zeroEven < pairs * 0.05) || (zeroEven > pairs * 0.4 && zeroOdd < pairs * 0.05)) {
      return utf16;
    }
  }
  return undefined;
}

/** Control characters other than tab, line feed, vertical tab, form feed and carriage return. */
function isControl(c: number): boolean {
  return (c < 0x20 && c !== 9 && c !== 10 && c !== 11 && c !== 12 && c !== 13) || c === 0x7f;
}

const SNIFF_BYTES = 64 * 1024;

/** Whether the first 64 KiB look like binary data: a NUL in invalid UTF-8, or >10% control characters. */
function looksBinary(sample: ArrayLike<number>, validUtf8: boolean): boolean {
  let control = 0;
  let nul = false;
  for (let i = 0; i < sample.length; i++) {
    const c = sample[i] ?? 0;
    if (c === 0) nul = true;
    if (isControl(c)) control++;
  }
  return (nul && !validUtf8) || control > sample.length * 0.1;
}

const notText: Sniffed = {
  message: 'the file is not a text file (it holds binary data)',
  hint: 'give gq the CSV text file with one task per line (instance_type,command)',
};

/** Line numbers (1-based, each once) of the lines holding bytes that are not UTF-8, and the first bad byte. */
function invalidUtf8Lines(buf: Uint8Array): { lines: number[]; firstByte: number } {
  const lines: number[] = [];
  let firstByte = -1;
  let line = 1;
  const n = buf.length;
  const cont = (i: number, lo = 0x80, hi = 0xbf) => i < n && (buf[i] ?? 0) >= lo && (buf[i] ?? 0) <= hi;
  let i = 0;
  while (i < n) {
    const b = buf[i] ?? 0;
    if (b < 0x80) {
      if (b === 10 || (b === 13 && buf[i + 1] !== 10)) line++;
      i++;
      continue;
    }
    let len = 0;
    if (b >= 0xc2 && b <= 0xdf) len = cont(i + 1) ? 2 : 0;
    else if (b === 0xe0) len = cont(i + 1, 0xa0) && cont(i + 2) ? 3 : 0;
    else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) len = cont(i + 1) && cont(i + 2) ? 3 : 0;
    else if (b === 0xed) len = cont(i + 1, 0x80, 0x9f) && cont(i + 2) ? 3 : 0;
    else if (b === 0xf0) len = cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (b >= 0xf1 && b <= 0xf3) len = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (b === 0xf4) len = cont(i + 1, 0x80, 0x8f) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    if (len === 0) {
      if (firstByte < 0) firstByte = b;
      if (lines[lines.length - 1] !== line) lines.push(line);
      i++;
    } else {
      i += len;
    }
  }
  return { lines, firstByte };
}

// ---------------------------------------------------------------------------------------------
// CSV reading (csv-parse)

const LF = 10;
const CR = 13;
const QUOTE = 34;

/**
 * How csv-parse reads a job file.
 * - relax_quotes: a quote inside an unquoted field is kept as it is (`t3.micro,echo "hi"`).
 * - relax_column_count: a row with the wrong number of columns is not a parse error but a problem
 *   that checkRow reports, with a hint, before going on with the next row.
 * - record_delimiter: all three line ends, always. Left to discover it, csv-parse keeps the first
 *   line end it meets, and a CRLF later in an LF file would leave a CR at the end of a command.
 * - skip_empty_lines: empty lines give no record. (Lines of spaces or only commas do; parseJobText
 *   skips those itself.) Without it every empty line would be a record of the wrong length, which
 *   costs csv-parse tens of µs (it builds a CsvError for each), and files written by Python's
 *   csv module on Windows have an empty line after every row.
 * - bom: set per call, for the first piece of the file only.
 */
const CSV_OPTIONS = {
  relax_quotes: true,
  relax_column_count: true,
  record_delimiter: ['\r\n', '\n', '\r'],
  skip_empty_lines: true,
} satisfies CsvOptions;

/**
 * Bytes handed to one csv-parse call (rounded up to the end of a line). Smaller pieces keep fewer
 * records alive at a time, which makes less work for the garbage collector: 128 KiB pieces took
 * about 15% less CPU time than 1 MiB ones on 1,000,000 rows.
 */
const PIECE_BYTES = 128 * 1024;

interface RecordSink {
  /** A record and the physical line it starts on. */
  record(fields: string[], line: number): void;
  /** A record that is not valid CSV: `field` is the 0-based field it broke in (-1: not known). */
  broken(line: number, field: number, message: string, hint: string): void;
  /** True when no more records are wanted. */
  readonly done: boolean;
}

function isCsvError(err: unknown, code: CsvErrorCode): err is CsvError {
  return err instanceof CsvError && err.code === code;
}

/** Line breaks (LF, CRLF, lone CR) in text[from, to). */
function countLineBreaks(text: string, from = 0, to = text.length): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) count++;
  }
  return count;
}

/** Line breaks (LF, CRLF, lone CR) in buf[from, to). */
function countByteLineBreaks(buf: Uint8Array, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c === LF || (c === CR && buf[i + 1] !== LF)) count++;
  }
  return count;
}

/** The offset just after the first line break (LF, CRLF or lone CR) at or after `from`; buf.length if there is none. */
function lineEndAfter(buf: Buffer, from: number): number {
  const n = buf.length;
  // Search a window that grows, so that a file without CRs (or without LFs) is not searched to its end for every piece.
  for (let w = 64 * 1024; from < n; w *= 2) {
    const win = buf.subarray(from, Math.min(n, from + w));
    const lf = win.indexOf(LF);
    const cr = win.indexOf(CR);
    if (cr >= 0 && (lf < 0 || cr < lf)) return from + cr + (buf[from + cr + 1] === LF ? 2 : 1);
    if (lf >= 0) return from + lf + 1;
    if (from + win.length === n) break;
  }
  return n;
}

/** The offset where the line holding buf[at] starts (`from` at the least). */
function lineStartBefore(buf: Buffer, from: number, at: number): number {
  let i = Math.min(at, buf.length) - 1;
  while (i >= from && buf[i] !== LF && buf[i] !== CR) i--;
  return Math.max(i + 1, from);
}

/** Whether a parsed field starts with a quote: a quoted field whose content does, or one csv-parse kept raw (see readCsv). */
function startsWithQuote(field: string): boolean {
  return field.charCodeAt(0) === QUOTE;
}

/** Hands one parsed record to the sink. Inside quoted fields CRLF and lone CR become LF (csv-parse keeps them as they are). */
function emit(fields: string[], line: number, sink: RecordSink): void {
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] ?? '';
    if (f.includes('\r')) fields[i] = f.replace(/\r\n?/g, '\n');
  }
  sink.record(fields, line);
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  if (c === '\t') return 'a tab';
  return JSON.stringify(c);
}

interface QuoteProblem {
  /** The field with the bad quote. */
  field: number;
  /** Line breaks from the start of the record's bytes to the bad quote. */
  lineOffset: number;
  message: string;
  hint: string;
}

/**
 * Whether a record has a quoted field with something other than a comma or a line end after its
 * closing quote (`"echo "hi" there"`, `"echo hi"  `). csv-parse with relax_quotes accepts that
 * (the field then starts with a quote: see readCsv), so the record's bytes are parsed again
 * without relax_quotes, where such a quote is a CSV_INVALID_CLOSING_QUOTE. (A quote inside an
 * unquoted field is an INVALID_OPENING_QUOTE there, and is fine.)
 */
function closingQuoteProblem(raw: Buffer): QuoteProblem | undefined {
  let found: CsvError | undefined;
  parse(raw, {
    ...CSV_OPTIONS,
    relax_quotes: false,
    skip_records_with_error: true,
    on_skip: (err) => {
      if (!found && err?.code === 'CSV_INVALID_CLOSING_QUOTE') found = err;
      return undefined;
    },
  });
  if (!found) return undefined;
  const field = typeof found.column === 'number' ? found.column : -1;
  // Where the field starts: just after the comma at err.bytes, or at the start of the record.
  const start = field > 0 && typeof found.bytes === 'number' ? found.bytes + 1 : 0;
  const text = raw.toString('utf8');
  const from = raw.subarray(0, start).toString('utf8').length;
  // The quote that csv-parse took for the closing one: the first quote after the opening one that
  // is not one of a "" pair.
  let q = text.charCodeAt(from) === QUOTE ? from + 1 : -1;
  while (q >= 0) {
    q = text.indexOf('"', q);
    if (q < 0 || text.charCodeAt(q + 1) !== QUOTE) break;
    q += 2;
  }
  const lineOffset = countLineBreaks(text, 0, q >= 0 ? q : from);
  const rest = q >= 0 ? (/^[^\r\n]*/.exec(text.slice(q + 1))?.[0] ?? '') : '';
  if (/^[ \t]+$/.test(rest)) {
    return {
      field,
      lineOffset,
      message: `${describeChar(rest[0] ?? ' ')} follows the closing quote of a quoted field`,
      hint: 'remove the spaces after the closing quote',
    };
  }
  const after = rest ? ` (${describeChar(rest[0] ?? '')} follows what looks like its closing quote)` : '';
  return {
    field,
    lineOffset,
    message: `a quoted field has a quote inside it that is not doubled${after}`,
    hint: 'inside a quoted field write each quote as "", e.g. t3.micro,"echo ""hello, world"""',
  };
}

/**
 * Walks the physical lines of a piece (ended by LF, CRLF or a lone CR), to number records: the
 * line ends are found with indexOf, each search moving only forward.
 */
class LineWalker {
  private nextLf = -1;
  private nextCr = -1;
  /** `pos`: the offset where the current line starts; `line`: its number in the file. */
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    public line: number,
  ) {}

  /** The offset of the current line's line break (buf.length for a last line without one). */
  private breakAt(): number {
    const { buf, pos } = this;
    if (this.nextLf < pos) {
      this.nextLf = buf.indexOf(LF, pos);
      if (this.nextLf < 0) this.nextLf = buf.length;
    }
    if (this.nextCr < pos) {
      this.nextCr = buf.indexOf(CR, pos);
      if (this.nextCr < 0) this.nextCr = buf.length;
    }
    return Math.min(this.nextLf, this.nextCr);
  }

  /** Moves to the next line. */
  next(): void {
    const at = this.breakAt();
    this.pos = at + (this.buf[at] === CR && this.buf[at + 1] === LF ? 2 : 1);
    this.line++;
  }

  /** Moves past empty lines, which csv-parse skips: a record starts on a line that is not empty. */
  skipEmpty(): void {
    while (this.pos < this.buf.length && this.breakAt() === this.pos) this.next();
  }

  /** Moves past a record that starts on the current line. */
  skipRecord(fields: readonly string[]): void {
    for (let n = 1 + fieldLineBreaks(fields); n > 0; n--) this.next();
  }
}

/** Line breaks inside a record's fields (in quoted fields). */
function fieldLineBreaks(fields: readonly string[]): number {
  let breaks = 0;
  for (const f of fields) if (f.includes('\n') || f.includes('\r')) breaks += countLineBreaks(f);
  return breaks;
}

/** The most common number of fields among the records of a piece. */
class Widths {
  private readonly counts = new Map<number, number>();
  add(fields: number): void {
    this.counts.set(fields, (this.counts.get(fields) ?? 0) + 1);
  }
  /** 0 when no record was seen. */
  get common(): number {
    let best = 0;
    let most = 0;
    for (const [width, count] of this.counts) {
      if (count > most) {
        best = width;
        most = count;
      }
    }
    return best;
  }
}

/**
 * Reads one piece with per-record byte offsets (about twice as slow): a piece with a field that
 * starts with a quote, which may be a malformed quoted field, and the last piece when it ends
 * inside a quote that is never closed. `lines` is at the start of the piece's own bytes;
 * `prefixed` says that the piece starts with a made-up record, and `widths` counts the others
 * (see readCsv).
 */
function readPieceCarefully(
  piece: Buffer,
  first: boolean,
  prefixed: boolean,
  lines: LineWalker,
  widths: Widths,
  sink: RecordSink,
): void {
  let skip = prefixed;
  try {
    parse(piece, {
      ...CSV_OPTIONS,
      bom: first,
      on_record: (fields: string[], info) => {
        if (skip) {
          skip = false;
          return null;
        }
        lines.skipEmpty();
        const line = lines.line;
        // The record's bytes, up to info.bytes: the offset just after its line end.
        const bad = fields.some(startsWithQuote) ? closingQuoteProblem(piece.subarray(lines.pos, info.bytes)) : undefined;
        lines.skipRecord(fields);
        if (bad) {
          sink.broken(line + bad.lineOffset, bad.field, bad.message, bad.hint);
        } else {
          widths.add(fields.length);
          emit(fields, line, sink);
        }
        return null; // csv-parse keeps nothing
      },
    });
  } catch (err) {
    if (!isCsvError(err, 'CSV_QUOTE_NOT_CLOSED')) throw err;
    // A quote that is never closed: the rest of the piece, which ends at the end of the file, is
    // one field, so this is the last problem the file can show. err.bytes is the offset of the
    // comma before that field (or of the end of the record before, for a first field).
    lines.skipEmpty();
    const at = Math.max(lines.pos, typeof err.bytes === 'number' ? Math.min(err.bytes, piece.length) : 0);
    const open = lines.line + countByteLineBreaks(piece, lines.pos, at);
    const last = piece[piece.length - 1];
    const lastLine = open + countByteLineBreaks(piece, at, piece.length) - (last === LF || last === CR ? 1 : 0);
    const span = lastLine > open ? ` (lines ${open}–${lastLine} were read as one field)` : '';
    sink.broken(
      open,
      typeof err.column === 'number' ? err.column : -1,
      `a quoted field opened on this line is never closed${span}`,
      'end the quoted field with " right before the comma or the end of the line, and write each quote inside it as ""',
    );
  }
}

/**
 * Splits CSV bytes into records with csv-parse and reports each with the physical line it starts
 * on.
 *
 * The file is parsed in pieces of about PIECE_BYTES, each ending just after a line break, so that
 * only one piece's records are in memory at a time. A piece can end inside a multi-line quoted
 * field: csv-parse then ends inside the quotes and throws CSV_QUOTE_NOT_CLOSED, and the piece is
 * parsed again, cut back to the start of that record's line (or, failing that, made twice as
 * long). A piece that parses ended with a line break outside quotes, which ended a record, so the
 * next piece starts where a parse of the whole file would start a record.
 *
 * csv-parse takes the number of fields of the first record of each call as the expected one, and
 * with relax_column_count it still builds a CsvError (25–100 µs) for every record of another
 * length. So that only odd rows pay for that, not whole pieces that happen to start with one,
 * the first piece is the first line alone (the header, most likely), and each piece after the
 * second is parsed behind a made-up record ("" and commas) as wide as most records of the piece
 * before: as wide as the rows, not as the header (think of a file whose commands all hold an
 * unquoted comma).
 *
 * Line numbers are counted here (LineWalker) rather than taken from csv-parse's `info.lines`,
 * which counts a CRLF inside a quoted field as two lines, and which needs per-record info, about
 * twice as slow: 4.5 s rather than 2.5 s for 1,000,000 rows on a 2-core machine. A record starts
 * on the first line that is not empty and takes one line plus the line breaks inside its quoted
 * fields.
 */
function readCsv(buf: Buffer, sink: RecordSink): void {
  const n = buf.length;
  let start = 0;
  let line = 1;
  let width = 0;
  while (start < n && !sink.done) {
    const prefix = width > 0 ? Buffer.from(`""${','.repeat(width - 1)}\n`) : undefined;
    const bytes = (to: number) => (prefix ? Buffer.concat([prefix, buf.subarray(start, to)]) : buf.subarray(start, to));
    const skip = prefix?.length ?? 0;
    let end = lineEndAfter(buf, start === 0 ? 0 : start + PIECE_BYTES);
    let piece = bytes(end);
    let records: string[][] | undefined;
    for (let retry = 0; ; retry++) {
      try {
        records = parse(piece, { ...CSV_OPTIONS, bom: start === 0 });
        break;
      } catch (err) {
        if (!isCsvError(err, 'CSV_QUOTE_NOT_CLOSED')) throw err;
        if (end === n) break; // a quote never closed: readPieceCarefully reports it
        // The piece ends inside a quoted field. err.bytes is the offset of the comma before it (or
        // of the start of its record): end the piece at the start of that line instead, which
        // is most likely where the record starts; if not, the next try says so.
        const cut = retry < 3 && typeof err.bytes === 'number' ? lineStartBefore(buf, start, start + err.bytes - skip) : start;
        end = cut > start && cut < end ? cut : lineEndAfter(buf, start + Math.max(PIECE_BYTES, 2 * (end - start)));
        piece = bytes(end);
      }
    }
    const bom = start === 0 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    const lines = new LineWalker(piece, skip + bom, line);
    const widths = new Widths();
    if (records && !records.some((r) => r.some(startsWithQuote))) {
      for (let i = prefix ? 1 : 0; i < records.length; i++) {
        const fields = records[i] ?? [];
        lines.skipEmpty();
        const at = lines.line;
        lines.skipRecord(fields);
        widths.add(fields.length);
        emit(fields, at, sink);
      }
    } else {
      readPieceCarefully(piece, start === 0, prefix !== undefined, lines, widths, sink);
    }
    lines.skipEmpty();
    line = lines.line;
    if (start > 0) width = widths.common || width; // (not the header's)
    start = end;
  }
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Shows a value from the file in a message: quoted, escaped, shortened. */
function show(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

class Problems {
  readonly list: JobFileProblem[] = [];
  count = 0;
  constructor(private readonly max: number) {}
  add(line: number, column: string | undefined, message: string, hint: string): void {
    this.count++;
    if (this.list.length < this.max) this.list.push(column ? { line, column, message, hint } : { line, message, hint });
  }
}

const IT = 'instance_type';
const CMD = 'command';
const HEADER_GUESSES: Record<string, string> = {
  instance: IT,
  instancetype: IT,
  'instance type': IT,
  'instance-type': IT,
  type: IT,
  instance_types: IT,
  machine: IT,
  cmd: CMD,
  commands: CMD,
  'command line': CMD,
  command_line: CMD,
  commandline: CMD,
  script: CMD,
};

function blank(fields: readonly string[]): boolean {
  for (const f of fields) if (f.trim() !== '') return false;
  return true;
}

interface Layout {
  columns: number;
  it: number;
  cmd: number;
}

/**
 * Reads the header record. Returns the layout to read data rows with (a guess when the header is
 * wrong, so that the rows can still be checked), whether the header line itself is a task, and
 * whether rows can be checked at all.
 */
function readHeader(
  fields: string[],
  line: number,
  problems: Problems,
): { layout: Layout; isData: boolean; stop: boolean } {
  const names = fields.map((f) => f.trim().toLowerCase());
  const it = names.indexOf(IT);
  const cmd = names.indexOf(CMD);
  const found = show(fields.join(','));
  if (names.length === 2 && it >= 0 && cmd >= 0) return { layout: { columns: 2, it, cmd }, isData: false, stop: false };

  // Semicolon- or tab-separated (European Excel, TSV).
  if (names.length === 1) {
    const sep = [';', '\t', '|'].find((d) => (names[0] ?? '').split(d).map((x) => x.trim()).includes(IT));
    if (sep) {
      problems.add(
        line,
        undefined,
        `the columns are separated by ${sep === '\t' ? 'tabs' : `"${sep}"`}, not commas`,
        `save the file as comma-separated CSV ("CSV UTF-8 (Comma delimited)" in Excel); the header must be ${JOB_FILE_HEADER}`,
      );
      return { layout: { columns: 2, it: 0, cmd: 1 }, isData: false, stop: true };
    }
  }

  // No header: the first line is already a task.
  const first = (fields[0] ?? '').trim();
  if (fields.length >= 2 && (isValidInstanceType(first) || suggestInstanceType(first) !== undefined)) {
    problems.add(
      line,
      undefined,
      `the header line is missing: line ${line} is already a task (${show(fields.join(','), 40)})`,
      `add the line ${JOB_FILE_HEADER} at the top of the file`,
    );
    return { layout: { columns: 2, it: 0, cmd: 1 }, isData: true, stop: false };
  }

  // A wrong header: say what is wrong with it, then read the rows as well as we can.
  const issues: string[] = [];
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    const orig = fields[i] ?? '';
    if (name === IT || name === CMD) {
      if (seen.has(name)) issues.push(`the column "${name}" appears twice`);
      seen.add(name);
      continue;
    }
    const guess = HEADER_GUESSES[name.replace(/\s+/g, ' ')];
    if (guess && !names.includes(guess)) issues.push(`rename ${show(orig)} to "${guess}"`);
    else if (name === '') issues.push(`column ${i + 1} has no name`);
    else issues.push(`remove the extra column ${show(orig)} (gq reads only ${IT} and ${CMD})`);
  }
  const guessed = names.map((nm) => (nm === IT || nm === CMD ? nm : HEADER_GUESSES[nm.replace(/\s+/g, ' ')]));
  for (const want of [IT, CMD]) {
    if (!guessed.includes(want)) issues.push(`add the column "${want}"`);
  }
  problems.add(
    line,
    undefined,
    `the header is ${found}; it must be "${JOB_FILE_HEADER}"`,
    `${issues.join('; ')}`,
  );
  let itAt = guessed.indexOf(IT);
  let cmdAt = guessed.indexOf(CMD);
  if (itAt < 0) itAt = cmdAt === 0 ? 1 : 0;
  if (cmdAt < 0) cmdAt = itAt === 1 ? 0 : 1;
  return { layout: { columns: Math.max(2, names.length), it: itAt, cmd: cmdAt }, isData: false, stop: false };
}

const INSTANCE_TYPE_HINT =
  'write an EC2 instance type as family.size in lower case, e.g. t3.micro, c5n.2xlarge, m7i-flex.large (or local to run on this machine)';

/** Checks one instance type; returns undefined when it is fine, else the problem. */
function instanceTypeProblem(raw: string, backend: BackendName | undefined): { message: string; hint: string } | undefined {
  const s = raw.trim();
  if (s === '') return { message: 'the instance type is empty', hint: INSTANCE_TYPE_HINT };
  if (s === LOCAL_INSTANCE_TYPE) {
    if (backend === 'aws') {
      return {
        message: 'the instance type "local" runs tasks on this machine, but this job is for the aws backend',
        hint: 'write an EC2 instance type such as t3.micro, or submit with the local backend',
      };
    }
    return undefined;
  }
  if (isEc2InstanceType(s)) return undefined;
  if (s.length > MAX_INSTANCE_TYPE_LENGTH && EC2_INSTANCE_TYPE.test(s)) {
    return {
      message: `the instance type ${show(s)} is ${s.length} characters long; the limit is ${MAX_INSTANCE_TYPE_LENGTH}`,
      hint: INSTANCE_TYPE_HINT,
    };
  }
  const guess = suggestInstanceType(s);
  const why =
    s !== s.toLowerCase()
      ? ' (instance types are lower case)'
      : guess && !s.includes('.') && guess !== LOCAL_INSTANCE_TYPE
        ? ' (the dot between family and size is missing)'
        : '';
  return {
    message: `${show(s)} is not an instance type${why}`,
    hint: guess ? `did you mean "${guess}"?` : INSTANCE_TYPE_HINT,
  };
}

function formatBytes(n: number): string {
  return n.toLocaleString('en-US');
}

const COMMAND_EMPTY_HINT = 'write the shell command to run for this task';

/**
 * Parses and checks job-file content (bytes as read from disk, or text). `fileLabel` names the
 * file in messages. Returns the tasks in file order, numbered from 1; throws a JobFileError
 * (a UserError) listing the problems when there is any.
 */
export function parseJobText(data: Buffer | Uint8Array | string, fileLabel: string, opts: ParseJobOptions = {}): NewTask[] {
  const max = opts.maxProblems ?? DEFAULT_MAX_JOB_FILE_PROBLEMS;
  const problems = new Problems(max > 0 ? max : DEFAULT_MAX_JOB_FILE_PROBLEMS);
  const fail = (): never => {
    throw new JobFileError(fileLabel, problems.list, problems.count);
  };
  const fileProblem = (p: Sniffed): never => {
    problems.add(0, undefined, p.message, p.hint);
    return fail();
  };

  // The bytes to parse: checked for other formats and encodings, not decoded as a whole (csv-parse
  // decodes field by field).
  let buf: Buffer;
  if (typeof data === 'string') {
    if (data.length > MAX_JOB_FILE_BYTES) fileProblem(tooLarge(data.length, fileLabel));
    if (looksBinary(stringSample(data), true)) fileProblem(notText);
    buf = Buffer.from(data, 'utf8');
  } else {
    if (data.length > MAX_JOB_FILE_BYTES) fileProblem(tooLarge(data.length, fileLabel));
    const format = sniffFormat(data, fileLabel);
    if (format) fileProblem(format);
    const validUtf8 = isUtf8(data);
    if (looksBinary(data.subarray(0, SNIFF_BYTES), validUtf8)) fileProblem(notText);
    if (!validUtf8) {
      const bad = invalidUtf8Lines(data);
      const byte = `0x${bad.firstByte.toString(16).toUpperCase().padStart(2, '0')}`;
      for (const line of bad.lines) {
        problems.add(
          line,
          undefined,
          `the line has bytes that are not UTF-8 text${line === bad.lines[0] ? ` (the first is ${byte})` : ''}; the file seems to be in another encoding such as Latin-1 or Windows-1252`,
          `save the file as UTF-8 (in Excel: "CSV UTF-8"), or convert it: iconv -f WINDOWS-1252 -t UTF-8 ${fileLabel} > jobdetails-utf8.csv`,
        );
      }
      return fail();
    }
    buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }

  const hasNul = buf.includes(0);
  const backend = opts.backend;
  const tasks: NewTask[] = [];
  let layout: Layout | undefined;
  let headerLine = 0;
  let stop = false;
  let rows = 0;
  // Canonical instance type strings (one per distinct value), or the problem with a value.
  const typeCache = new Map<string, string | { message: string; hint: string }>();

  const checkRow = (fields: string[], line: number, lay: Layout): void => {
    rows++;
    if (fields.length !== lay.columns) {
      const n = fields.length;
      const what = `expected ${lay.columns} columns (${lay.columns === 2 ? JOB_FILE_HEADER : 'as in the header'}) but found ${n}`;
      let hint: string;
      if (n < lay.columns) {
        const only = fields[0] ?? '';
        const sep = [';', '\t'].find((d) => only.includes(d));
        hint = sep
          ? `separate the columns with a comma, not ${sep === '\t' ? 'a tab' : `"${sep}"`}`
          : 'put a comma between the instance type and the command, e.g. t3.micro,echo hello';
      } else if (fields.slice(lay.columns).every((f) => f.trim() === '')) {
        hint = 'remove the extra commas at the end of the line';
      } else {
        hint = 'the command contains a comma: put the whole command in double quotes and write each quote inside it as "", e.g. t3.micro,"echo a,b"';
      }
      problems.add(line, undefined, what, hint);
      return;
    }
    const rawType = fields[lay.it] ?? '';
    const command = fields[lay.cmd] ?? '';
    let ok = true;

    let type = typeCache.get(rawType);
    if (type === undefined) {
      type = instanceTypeProblem(rawType, backend) ?? rawType.trim();
      if (typeCache.size < 10_000) typeCache.set(rawType, type);
    }
    if (typeof type !== 'string') {
      problems.add(line, IT, type.message, type.hint);
      ok = false;
    }

    if (command.length === 0) {
      problems.add(line, CMD, 'the command is empty', COMMAND_EMPTY_HINT);
      ok = false;
    } else if (!/\S/.test(command)) {
      problems.add(line, CMD, 'the command is only whitespace', COMMAND_EMPTY_HINT);
      ok = false;
    } else {
      const nul = hasNul ? command.indexOf('\0') : -1;
      if (nul >= 0) {
        problems.add(
          line,
          CMD,
          `the command contains a NUL byte (at character ${nul + 1})`,
          'remove it: a shell command cannot contain NUL bytes (was the file saved by a program that adds binary data?)',
        );
        ok = false;
      }
      if (command.length * 3 > MAX_COMMAND_BYTES) {
        const bytes = Buffer.byteLength(command, 'utf8');
        if (bytes > MAX_COMMAND_BYTES) {
          problems.add(
            line,
            CMD,
            `the command is ${formatBytes(bytes)} bytes long; the limit is ${formatBytes(MAX_COMMAND_BYTES)} bytes (128 KiB)`,
            'put the long part in a script in the code folder and run that script, e.g. t3.micro,bash run_task.sh 17',
          );
          ok = false;
        }
      }
    }
    if (ok && problems.count === 0 && typeof type === 'string') {
      tasks.push({ task: rows, instanceType: type, command });
    }
  };

  readCsv(buf, {
    get done() {
      return stop;
    },
    record(fields, line) {
      if (stop || blank(fields)) return;
      if (!layout) {
        headerLine = line;
        const h = readHeader(fields, line, problems);
        layout = h.layout;
        stop = h.stop;
        if (h.isData) checkRow(fields, line, layout);
        return;
      }
      checkRow(fields, line, layout);
    },
    broken(line, field, message, hint) {
      if (stop) return;
      if (!layout) {
        headerLine = line;
        layout = { columns: 2, it: 0, cmd: 1 };
        problems.add(line, undefined, `the header line is not valid CSV: ${message}`, `the first line must be ${JOB_FILE_HEADER}`);
        return;
      }
      rows++;
      const column = field === layout.cmd ? CMD : field === layout.it ? IT : undefined;
      problems.add(line, column, message, hint);
    },
  });

  if (!layout) {
    const bomBytes = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    fileProblem(
      buf.length === bomBytes
        ? { message: 'the file is empty', hint: `write the header ${JOB_FILE_HEADER} and then one task per line` }
        : { message: 'the file has only blank lines', hint: `write the header ${JOB_FILE_HEADER} and then one task per line` },
    );
  }
  if (layout && rows === 0 && !stop) {
    problems.add(
      headerLine,
      undefined,
      'the file has a header but no tasks',
      'add one line per task below the header, e.g. t3.micro,python run.py --seed 1',
    );
  }
  if (problems.count > 0) fail();
  return tasks;
}

function stringSample(s: string): number[] {
  const n = Math.min(s.length, SNIFF_BYTES);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}

function tooLarge(size: number, file: string): Sniffed {
  const mb = (x: number) => `${(x / (1024 * 1024)).toFixed(0)} MiB`;
  return {
    message: `the file is ${mb(size)}; the limit is ${mb(MAX_JOB_FILE_BYTES)}`,
    hint: `split ${file} into several job files and submit each as its own job`,
  };
}

/**
 * Reads, parses and checks a job file. Refuses a file over MAX_JOB_FILE_BYTES before reading it.
 * Throws a UserError for a missing or unreadable file, a JobFileError (a UserError) listing every
 * problem found in a bad one.
 */
export async function parseJobFile(path: string, opts: ParseJobOptions = {}): Promise<NewTask[]> {
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) {
      throw new UserError(`${path} is a folder, not a job file.`, {
        hint: 'Give the path of the CSV file with the tasks (instance_type,command), e.g. config/jobdetails.csv',
      });
    }
    size = st.size;
  } catch (err) {
    throw readError(err, path);
  }
  if (size > MAX_JOB_FILE_BYTES) {
    const p = tooLarge(size, path);
    throw new JobFileError(path, [{ line: 0, ...p }], 1);
  }
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw readError(err, path);
  }
  return parseJobText(data, path, opts);
}

function readError(err: unknown, path: string): unknown {
  if (err instanceof GqError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new UserError(`The job file ${path} does not exist.`, {
      hint: 'Check the path. A job file is a CSV file with the header instance_type,command.',
      cause: err,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new UserError(`The job file ${path} cannot be read (permission denied).`, {
      hint: `Check its permissions, e.g. ls -l ${path}`,
      cause: err,
    });
  }
  if (code === 'EISDIR') {
    return new UserError(`${path} is a folder, not a job file.`, { hint: 'Give the path of the CSV file with the tasks.', cause: err });
  }
  return new UserError(`The job file ${path} cannot be read: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
