/**
 * Sniffing what the bytes of a job file are before they are parsed: another format (UTF-16, a
 * ZIP or .xls workbook, gzip, binary data), bytes that are not UTF-8, a file over the size limit;
 * and the separator of a file that is not comma-separated (`;`, tab, `|`).
 */
import { isUtf8 } from 'node:buffer';
import { IT, MAX_JOB_FILE_BYTES } from './format.js';
import type { Finding, Problems } from './problems.js';

function startsWith(buf: Uint8Array, bytes: readonly number[]): boolean {
  return bytes.every((b, i) => buf[i] === b);
}

/** Recognises files that are certainly not a UTF-8 CSV: other encodings, archives, spreadsheets. */
function sniffFormat(buf: Uint8Array, file: string): Finding | undefined {
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

const notText: Finding = {
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

function stringSample(s: string): number[] {
  const n = Math.min(s.length, SNIFF_BYTES);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** A file of `size` bytes is over MAX_JOB_FILE_BYTES. */
export function tooLarge(size: number, file: string): Finding {
  const mb = (x: number) => `${(x / (1024 * 1024)).toFixed(0)} MiB`;
  return {
    message: `the file is ${mb(size)}; the limit is ${mb(MAX_JOB_FILE_BYTES)}`,
    hint: `split ${file} into several job files and submit each as its own job`,
  };
}

/**
 * The bytes of job-file content to parse as CSV (text is encoded as UTF-8; bytes are checked,
 * not decoded as a whole: csv-parse decodes field by field). Undefined when the content cannot be
 * a UTF-8 CSV: then `problems` says why (line 0 for the whole file, or each line that is not UTF-8).
 */
export function sniffBytes(data: Buffer | Uint8Array | string, file: string, problems: Problems): Buffer | undefined {
  const fileProblem = (p: Finding): undefined => {
    problems.add(0, undefined, p.message, p.hint);
    return undefined;
  };
  if (typeof data === 'string') {
    if (data.length > MAX_JOB_FILE_BYTES) return fileProblem(tooLarge(data.length, file));
    if (looksBinary(stringSample(data), true)) return fileProblem(notText);
    return Buffer.from(data, 'utf8');
  }
  if (data.length > MAX_JOB_FILE_BYTES) return fileProblem(tooLarge(data.length, file));
  const format = sniffFormat(data, file);
  if (format) return fileProblem(format);
  const validUtf8 = isUtf8(data);
  if (looksBinary(data.subarray(0, SNIFF_BYTES), validUtf8)) return fileProblem(notText);
  if (!validUtf8) {
    const bad = invalidUtf8Lines(data);
    const byte = `0x${bad.firstByte.toString(16).toUpperCase().padStart(2, '0')}`;
    for (const line of bad.lines) {
      problems.add(
        line,
        undefined,
        `the line has bytes that are not UTF-8 text${line === bad.lines[0] ? ` (the first is ${byte})` : ''}; the file seems to be in another encoding such as Latin-1 or Windows-1252`,
        `save the file as UTF-8 (in Excel: "CSV UTF-8"), or convert it: iconv -f WINDOWS-1252 -t UTF-8 ${file} > jobdetails-utf8.csv`,
      );
    }
    return undefined;
  }
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The separator a header of one column uses instead of commas, when splitting by it finds the
 * instance_type column: `;` (Excel in many European locales), a tab (TSV) or `|`. `name` is the
 * header's one field, trimmed and in lower case.
 */
export function headerSeparator(name: string): string | undefined {
  return [';', '\t', '|'].find((d) => name.split(d).map((x) => x.trim()).includes(IT));
}

/** The separator a row of too few columns seems to use instead of commas (`;` or a tab), if any. */
export function rowSeparator(field: string): string | undefined {
  return [';', '\t'].find((d) => field.includes(d));
}
