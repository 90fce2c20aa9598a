/**
 * Splitting job-file bytes into CSV records with csv-parse, each reported with the physical line
 * it starts on; and the speed workaround that keeps that linear for a million rows (pieces, a
 * made-up first record per piece, line numbers counted here). See readCsv.
 */
import { CsvError, parse, type CsvErrorCode, type Options as CsvOptions } from 'csv-parse/sync';
import { countByteLineBreaks, countLineBreaks, CR, LF, lineEndAfter, LineWalker, lineStartBefore } from './csv-lines.js';

const QUOTE = 34;

/**
 * How csv-parse reads a job file.
 * - relax_quotes: a quote inside an unquoted field is kept as it is (`t3.micro,echo "hi"`).
 * - relax_column_count: a row with the wrong number of columns is not a parse error but a problem
 *   that the row rules (rows.ts) report, with a hint, before going on with the next row.
 * - record_delimiter: all three line ends, always. Left to discover it, csv-parse keeps the first
 *   line end it meets, and a CRLF later in an LF file would leave a CR at the end of a command.
 * - skip_empty_lines: empty lines give no record. (Lines of spaces or only commas do; the parser
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

export interface RecordSink {
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
export function readCsv(buf: Buffer, sink: RecordSink): void {
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
