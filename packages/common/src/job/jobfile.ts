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
 *
 * The parser is a small hand-written RFC 4180 scanner rather than csv-parse: csv-parse cannot
 * resynchronise after a malformed quote (so it cannot report more than one such problem), and
 * with the per-record line tracking needed for error messages it takes 6–10 s for 1,000,000 rows
 * on a 2-core machine, against 0.4–1 s here. test/jobfile.test.ts checks that both agree on
 * well-formed input.
 */
import { readFile, stat } from 'node:fs/promises';
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
// CSV scanning

const LF = 10;
const CR = 13;
const QUOTE = 34;
const COMMA = 44;

interface ScanSink {
  record(fields: string[], line: number): void;
  /** A record that cannot be split into fields; `field` is the 0-based field it broke in. */
  broken(line: number, field: number, message: string, hint: string): void;
}

/** Line breaks (LF, CRLF, lone CR) in text[from, to). */
function countLineBreaks(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) count++;
  }
  return count;
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  if (c === '\t') return 'a tab';
  return JSON.stringify(c);
}

/**
 * Splits CSV text into records and reports each with the physical line it starts on. Lines with
 * no quote and no lone CR (nearly all of them) take a fast path; the rest go through a state
 * machine that handles quoted fields spanning lines.
 */
function scanCsv(text: string, sink: ScanSink): void {
  const n = text.length;
  let pos = 0;
  let line = 1;
  // Next LF, quote, CR and comma at or after `pos` (each search only moves forward: linear time).
  let nextLf = -1;
  let nextQuote = -1;
  let nextCr = -1;
  let nextComma = -1;
  const after = (ch: string, from: number): number => {
    const i = text.indexOf(ch, from);
    return i < 0 ? n : i;
  };
  // The first field of the last fast-path line, reused when the next line starts the same way.
  let lastFirst = '';

  while (pos < n) {
    if (nextLf < pos) nextLf = after('\n', pos);
    const eol = nextLf;
    const end = eol > pos && text.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
    if (nextQuote < pos) nextQuote = after('"', pos);
    if (nextCr < pos) nextCr = after('\r', pos);
    if (nextQuote >= end && nextCr >= end) {
      const fields: string[] = [];
      let p = pos;
      for (;;) {
        if (nextComma < p) nextComma = after(',', p);
        const stop = nextComma < end ? nextComma : end;
        if (p === pos && stop - pos === lastFirst.length && text.startsWith(lastFirst, pos)) fields.push(lastFirst);
        else fields.push(text.slice(p, stop));
        if (stop === end) break;
        p = stop + 1;
      }
      lastFirst = fields[0] ?? '';
      sink.record(fields, line);
      pos = eol + 1;
      line++;
      continue;
    }

    // Slow path: one record from `pos`, possibly over several lines.
    const startLine = line;
    const fields: string[] = [];
    let ok = true;
    for (;;) {
      if (text.charCodeAt(pos) === QUOTE) {
        const openLine = line;
        let value = '';
        let p = pos + 1;
        let closed = false;
        for (;;) {
          const q = text.indexOf('"', p);
          if (q < 0) break;
          value += text.slice(p, q);
          line += countLineBreaks(text, p, q);
          if (text.charCodeAt(q + 1) === QUOTE) {
            value += '"';
            p = q + 2;
            continue;
          }
          pos = q + 1;
          closed = true;
          break;
        }
        if (!closed) {
          const lastLine = line + countLineBreaks(text, p, n) - (text.endsWith('\n') || text.endsWith('\r') ? 1 : 0);
          const span = lastLine > openLine ? ` (lines ${openLine}–${lastLine} were read as one field)` : '';
          sink.broken(
            openLine,
            fields.length,
            `a quoted field opened on this line is never closed${span}`,
            'end the quoted field with " right before the comma or the end of the line, and write each quote inside it as ""',
          );
          return;
        }
        fields.push(value.includes('\r') ? value.replace(/\r\n?/g, '\n') : value);
        const c = pos < n ? text.charCodeAt(pos) : -1;
        if (c === COMMA) {
          pos++;
          continue;
        }
        if (c === -1 || c === LF || c === CR) break;
        // Something after the closing quote: an undoubled quote inside the field, or trailing text.
        let stop = pos;
        while (stop < n && text.charCodeAt(stop) !== LF && text.charCodeAt(stop) !== CR) stop++;
        const rest = text.slice(pos, stop);
        if (/^[ \t]+$/.test(rest)) {
          sink.broken(
            line,
            fields.length - 1,
            `${describeChar(rest[0] ?? ' ')} follows the closing quote of a quoted field`,
            'remove the spaces after the closing quote',
          );
        } else {
          sink.broken(
            line,
            fields.length - 1,
            `a quoted field has a quote inside it that is not doubled (${describeChar(rest[0] ?? '')} follows what looks like its closing quote)`,
            'inside a quoted field write each quote as "", e.g. t3.micro,"echo ""hello, world"""',
          );
        }
        pos = stop;
        ok = false;
        break;
      } else {
        let p = pos;
        while (p < n) {
          const c = text.charCodeAt(p);
          if (c === COMMA || c === LF || c === CR) break;
          p++;
        }
        fields.push(text.slice(pos, p));
        pos = p;
        if (pos < n && text.charCodeAt(pos) === COMMA) {
          pos++;
          continue;
        }
        break;
      }
    }
    // The record's line break.
    if (pos < n) {
      if (text.charCodeAt(pos) === CR) pos++;
      if (pos < n && text.charCodeAt(pos) === LF) pos++;
      line++;
    }
    if (ok) sink.record(fields, startLine);
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

  // Bytes → text.
  let text: string;
  if (typeof data === 'string') {
    if (data.length > MAX_JOB_FILE_BYTES) fileProblem(tooLarge(data.length, fileLabel));
    if (looksBinary(stringSample(data), true)) fileProblem(notText);
    text = data.charCodeAt(0) === 0xfeff ? data.slice(1) : data;
  } else {
    if (data.length > MAX_JOB_FILE_BYTES) fileProblem(tooLarge(data.length, fileLabel));
    const format = sniffFormat(data, fileLabel);
    if (format) fileProblem(format);
    let decoded: string | undefined;
    try {
      decoded = new TextDecoder('utf-8', { fatal: true }).decode(data); // also drops a UTF-8 BOM
    } catch {
      decoded = undefined;
    }
    if (looksBinary(data.subarray(0, SNIFF_BYTES), decoded !== undefined)) fileProblem(notText);
    if (decoded === undefined) {
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
    text = decoded;
  }

  if (!/\S/.test(text)) {
    fileProblem(
      text.length === 0
        ? { message: 'the file is empty', hint: `write the header ${JOB_FILE_HEADER} and then one task per line` }
        : { message: 'the file has only blank lines', hint: `write the header ${JOB_FILE_HEADER} and then one task per line` },
    );
  }

  const hasNul = text.includes('\0');
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

  scanCsv(text, {
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
