import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as csvStringify } from 'csv-stringify/sync';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  DEFAULT_MAX_JOB_FILE_PROBLEMS,
  JobFileError,
  MAX_COMMAND_BYTES,
  MAX_JOB_FILE_BYTES,
  isEc2InstanceType,
  isValidInstanceType,
  parseJobFile,
  parseJobText,
  parseJobTextWithLines,
  suggestInstanceType,
  type ParseJobOptions,
} from '../src/job/jobfile/index.js';

/** Every read of a file's content by the parser (node:fs/promises readFile, which it reads files with), counted. */
const fsReads = vi.hoisted(() => vi.fn());
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...fs,
    readFile: (...args: Parameters<typeof fs.readFile>) => {
      fsReads(...args);
      return fs.readFile(...args);
    },
  };
});

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'jobfiles');
const TMP = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'jobfile-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const H = 'instance_type,command\n';
const FILE = 'jobdetails.csv';

/** The JobFileError that parsing `data` throws. */
function failure(data: string | Buffer, opts?: ParseJobOptions): JobFileError {
  try {
    parseJobText(data, FILE, opts);
  } catch (err) {
    if (err instanceof JobFileError) return err;
    throw err;
  }
  throw new Error('expected the job file to be rejected');
}

/** A small deterministic random number generator (mulberry32): rnd(n) is an integer in [0, n). */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Physical lines (LF, CRLF or lone CR) before the end of `text`, i.e. the line number the next line has, less one. */
function linesIn(text: string): number {
  return text.match(/\r\n|\n|\r/g)?.length ?? 0;
}

function u16le(s: string, bom: boolean): Buffer {
  const body = Buffer.from(s, 'utf16le');
  return bom ? Buffer.concat([Buffer.from([0xff, 0xfe]), body]) : body;
}

interface BadCase {
  name: string;
  data: string | Buffer;
  /** Line of the first problem (0 = the whole file). */
  line: number;
  /** Substring of the first problem's detail line (message and hint). */
  text: string;
  column?: string;
  opts?: ParseJobOptions;
}

const BAD: BadCase[] = [
  // Whole-file problems.
  { name: 'empty file', data: '', line: 0, text: 'the file is empty' },
  { name: 'empty file (bytes)', data: Buffer.alloc(0), line: 0, text: 'the file is empty' },
  { name: 'only blank lines', data: '\n  \n\r\n\t\n', line: 0, text: 'only blank lines' },
  { name: 'random bytes', data: randomBytes(100_000), line: 0, text: 'not a text file' },
  { name: 'all NUL bytes', data: Buffer.alloc(4096), line: 0, text: 'not a text file' },
  { name: 'binary blob after a header', data: Buffer.concat([Buffer.from(H), Buffer.from([0, 1, 2, 3, 0, 0, 0, 5, 6, 0, 7, 8, 0, 0, 0, 0, 0, 0, 4, 0])]), line: 0, text: 'not a text file' },
  { name: 'UTF-16 with BOM', data: u16le(`${H}t3.micro,echo hi\n`, true), line: 0, text: 'UTF-16' },
  { name: 'UTF-16 without BOM', data: u16le(`${H}t3.micro,echo hi\n`, false), line: 0, text: 'UTF-16' },
  { name: 'xlsx (zip)', data: Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), randomBytes(200)]), line: 0, text: 'ZIP archive' },
  { name: 'gzip', data: Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), randomBytes(200)]), line: 0, text: 'gzip-compressed' },
  { name: 'latin-1 text', data: Buffer.from(`${H}t3.micro,echo ok\nt3.micro,echo café\n`, 'latin1'), line: 3, text: 'not UTF-8 text (the first is 0xE9)' },
  { name: 'windows-1252 quote after blank lines', data: Buffer.from([...Buffer.from(`${H}\n\nt3.micro,echo `), 0x93, 0x68, 0x69, 0x94, 0x0a]), line: 4, text: 'iconv -f WINDOWS-1252' },
  // Header problems.
  { name: 'header only', data: H, line: 1, text: 'the file has a header but no tasks' },
  { name: 'header and blank lines only', data: `\n${H}\n\n`, line: 2, text: 'header but no tasks' },
  { name: 'missing header', data: 't3.micro,echo hi\nt3.micro,echo 2\n', line: 1, text: 'the header line is missing: line 1 is already a task ("t3.micro,echo hi") — add the line instance_type,command at the top' },
  { name: 'missing header, near-miss type', data: 'T3.Micro,echo hi\n', line: 1, text: 'header line is missing' },
  { name: 'wrong header names', data: 'instance,cmd\nt3.micro,echo\n', line: 1, text: 'the header is "instance,cmd"; it must be "instance_type,command" — rename "instance" to "instance_type"; rename "cmd" to "command"' },
  { name: 'extra column', data: 'instance_type,command,notes\nt3.micro,echo,x\n', line: 1, text: 'remove the extra column "notes"' },
  { name: 'duplicate column', data: 'command,command\nt3.micro,echo\n', line: 1, text: 'the column "command" appears twice' },
  { name: 'one header column', data: 'command\necho\n', line: 1, text: 'add the column "instance_type"' },
  { name: 'semicolon separated', data: 'instance_type;command\nt3.micro;echo 1\n', line: 1, text: 'separated by ";", not commas' },
  { name: 'tab separated', data: 'instance_type\tcommand\nt3.micro\techo 1\n', line: 1, text: 'separated by tabs' },
  { name: 'header is broken CSV', data: '"instance_type,command\nt3.micro,echo\n', line: 1, text: 'the header line is not valid CSV' },
  // Column counts.
  { name: 'too few columns', data: `${H}t3.micro echo hi\n`, line: 2, text: 'expected 2 columns (instance_type,command) but found 1 — put a comma between' },
  { name: 'unquoted comma in command', data: `${H}t3.micro,echo a,b\n`, line: 2, text: 'found 3 — the command contains a comma: put the whole command in double quotes' },
  { name: 'trailing commas', data: `${H}t3.micro,echo hi,,\n`, line: 2, text: 'remove the extra commas at the end of the line' },
  { name: 'semicolon in one row', data: `${H}t3.micro,echo\nt3.micro;echo\n`, line: 3, text: 'not ";"' },
  // Commands.
  {
    name: 'empty command',
    data: `${H}t3.micro,echo 1\nt3.micro,echo 2\nt3.micro,echo 3\nt3.micro,echo 4\nt3.micro,echo 5\nt3.micro,\n`,
    line: 7,
    column: 'command',
    text: 'jobdetails.csv:7: column "command": the command is empty — write the shell command to run for this task',
  },
  { name: 'quoted empty command', data: `${H}t3.micro,""\n`, line: 2, column: 'command', text: 'the command is empty' },
  { name: 'whitespace-only command', data: `${H}t3.micro,   \t \n`, line: 2, column: 'command', text: 'the command is only whitespace' },
  { name: 'NUL in command', data: `${H}t3.micro,echo a\0b\n`, line: 2, column: 'command', text: 'NUL byte (at character 7)' },
  { name: 'command over the limit', data: `${H}t3.micro,echo ${'x'.repeat(MAX_COMMAND_BYTES)}\n`, line: 2, column: 'command', text: 'the limit is 131,071 bytes' },
  { name: 'multibyte command over the limit', data: `${H}t3.micro,echo ${'é'.repeat(MAX_COMMAND_BYTES / 2)}\n`, line: 2, column: 'command', text: 'bytes long' },
  // Instance types.
  { name: 'empty instance type', data: `${H},echo hi\n`, line: 2, column: 'instance_type', text: 'the instance type is empty' },
  { name: 'upper case', data: `${H}T2.Small,echo\n`, line: 2, column: 'instance_type', text: '"T2.Small" is not an instance type (instance types are lower case) — did you mean "t2.small"?' },
  { name: 'missing dot', data: `${H}t2small,echo\n`, line: 2, column: 'instance_type', text: 'the dot between family and size is missing) — did you mean "t2.small"?' },
  { name: 'underscore', data: `${H}t3_micro,echo\n`, line: 2, text: 'did you mean "t3.micro"?' },
  { name: 'xxlarge', data: `${H}m5.xxlarge,echo\n`, line: 2, text: 'did you mean "m5.2xlarge"?' },
  { name: 'size typo', data: `${H}t3.smal,echo\n`, line: 2, text: 'did you mean "t3.small"?' },
  { name: 'garbage instance type', data: `${H}banana,echo\n`, line: 2, text: '"banana" is not an instance type — write an EC2 instance type as family.size' },
  { name: 'two dots', data: `${H}t3.micro.large,echo\n`, line: 2, text: 'is not an instance type' },
  { name: 'Local', data: `${H}Local,echo\n`, line: 2, text: 'did you mean "local"?' },
  { name: 'local on aws', data: `${H}local,echo\n`, line: 2, text: 'this job is for the aws backend', opts: { backend: 'aws' } },
  { name: 'instance type too long', data: `${H}c5${'a'.repeat(40)}.large,echo\n`, line: 2, text: 'characters long; the limit is 32' },
  // Quoting.
  { name: 'unterminated quote', data: `${H}t3.micro,echo 1\nt3.micro,"echo hi\nt3.micro,echo 3\n`, line: 3, text: 'a quoted field opened on this line is never closed (lines 3–4 were read as one field)' },
  { name: 'unterminated quote on the last line', data: `${H}t3.micro,"echo hi`, line: 2, text: 'never closed — end the quoted field with "' },
  { name: 'undoubled quote in quoted field', data: `${H}t3.micro,"echo "hi" there"\n`, line: 2, column: 'command', text: 'quote inside it that is not doubled ("h" follows' },
  { name: 'space after closing quote', data: `${H}t3.micro,"echo hi"  \n`, line: 2, text: 'a space follows the closing quote of a quoted field — remove the spaces' },
  // Line numbers.
  { name: 'blank lines count', data: `${H}\n\n   \nt3.micro,\n`, line: 5, text: 'the command is empty' },
  { name: 'comma-only lines are blank', data: `${H},\n , \nt3.micro,\n`, line: 4, text: 'the command is empty' },
  { name: 'multi-line quoted command before', data: `${H}t3.micro,"echo a\necho b\necho c"\nt3.micro,\n`, line: 5, text: 'the command is empty' },
  { name: 'CRLF', data: `instance_type,command\r\nt3.micro,echo 1\r\nt3.micro,\r\n`, line: 3, text: 'the command is empty' },
  { name: 'lone CR line ends', data: 'instance_type,command\rt3.micro,echo 1\rt3.micro,\r', line: 3, text: 'the command is empty' },
  { name: 'mixed line ends', data: 'instance_type,command\r\nt3.micro,echo 1\nt3.micro,echo 2\r\nT3,echo\n', line: 4, text: '"T3" is not an instance type' },
  { name: 'BOM does not shift lines', data: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${H}t3.micro,\n`)]), line: 2, text: 'the command is empty' },
  // (csv-parse's own line count says 7 here: it counts a CRLF inside quotes twice.)
  { name: 'CRLF inside a quoted command', data: 'instance_type,command\r\nt3.micro,"a\r\nb\r\nc"\r\nt3.micro,\r\n', line: 5, text: 'the command is empty' },
  { name: 'Python csv on Windows (\\r\\r\\n)', data: 'instance_type,command\r\r\nt3.micro,echo 1\r\r\nt3.micro,\r\r\n', line: 5, text: 'the command is empty' },
  { name: 'only commas and spaces', data: ',\n , \n,,\n', line: 0, text: 'the file has only blank lines' },
  { name: 'undoubled quote after a multi-line command', data: `${H}t3.micro,"a\nb"\n\nt3.micro,"x"y\n`, line: 5, column: 'command', text: '("y" follows' },
  { name: 'undoubled quote on the 2nd line of a command', data: `${H}t3.micro,"echo a\necho "b" c"\n`, line: 3, column: 'command', text: 'not doubled ("b" follows' },
  { name: 'undoubled quote in the instance type', data: `${H}"t3"micro,echo\n`, line: 2, column: 'instance_type', text: 'not doubled ("m" follows' },
  { name: 'unterminated quote after blank lines', data: `${H}t3.micro,ok\n\n\nt3.micro,"echo\n`, line: 5, text: 'never closed —' },
  { name: 'unterminated quote in the first field', data: `${H}t3.micro,ok\n\n"t3.micro,echo\nx\n`, line: 4, text: 'never closed (lines 4–5 were read as one field)' },
];

describe('parseJobText: bad files', () => {
  it('has at least 30 distinct bad cases', () => {
    expect(new Set(BAD.map((c) => c.name)).size).toBe(BAD.length);
    expect(BAD.length).toBeGreaterThanOrEqual(30);
  });

  it.each(BAD)('$name → line $line', ({ data, line, text, column, opts }) => {
    const err = failure(data, opts);
    expect(err).toBeInstanceOf(UserError);
    const first = err.problems[0];
    expect(first?.line).toBe(line);
    if (column) expect(first?.column).toBe(column);
    const detail = err.details[0] ?? '';
    expect(detail.startsWith(line > 0 ? `${FILE}:${line}: ` : `${FILE}: `)).toBe(true);
    expect(detail).toContain(text);
    expect(err.message).toMatch(new RegExp(`^The job file ${FILE} has \\d+ problems?\\.$`));
    expect(err.hint).toContain('instance_type,command');
  });

  it('reports every problem of a file, in line order, in one error', () => {
    const err = failure(
      `${H}t3.micro,echo 1\nT2.Small,echo 2\nt3.micro,\n\nt3micro,echo 4\nt3.micro,echo a,b\nt3.micro,"x"y\nt3.micro,ok\n`,
    );
    expect(err.problemCount).toBe(5);
    expect(err.problems.map((p) => p.line)).toEqual([3, 4, 6, 7, 8]);
    expect(err.message).toBe(`The job file ${FILE} has 5 problems.`);
    expect(err.details).toHaveLength(5);
  });

  it('reports two problems on one row', () => {
    const err = failure(`${H}T2.micro,\n`);
    expect(err.problems.map((p) => [p.line, p.column])).toEqual([
      [2, 'instance_type'],
      [2, 'command'],
    ]);
  });

  it('keeps checking the rows after a bad header', () => {
    const err = failure('instance_type,command,notes\nt3.micro,echo,x\nt3.micro,,y\n');
    expect(err.problems.map((p) => p.line)).toEqual([1, 3]);
    expect(err.problems[1]?.column).toBe('command');
  });

  it('keeps checking the rows after an undoubled quote', () => {
    const err = failure(`${H}t3.micro,"a"b"c"\nt3.micro,\nt3.micro,ok\nbad,ok\n`);
    expect(err.problems.map((p) => p.line)).toEqual([2, 3, 5]);
  });

  it('reports every line that is not UTF-8', () => {
    const err = failure(Buffer.from(`${H}t3.micro,é\nt3.micro,ok\nt3.micro,ü ö\n`, 'latin1'));
    expect(err.problems.map((p) => p.line)).toEqual([2, 4]);
  });

  it('caps the details at 20 problems by default and counts the rest', () => {
    const rows = Array.from({ length: 500 }, () => 't3.micro,').join('\n');
    const err = failure(`${H}${rows}\n`);
    expect(DEFAULT_MAX_JOB_FILE_PROBLEMS).toBe(20);
    expect(err.problemCount).toBe(500);
    expect(err.problems).toHaveLength(20);
    expect(err.details).toHaveLength(21);
    expect(err.details[20]).toBe('... and 480 more problems');
    expect(err.details[19]).toMatch(/^jobdetails\.csv:21: /);
    expect(err.message).toBe(`The job file ${FILE} has 500 problems.`);
  });

  it('takes another cap with maxProblems', () => {
    const rows = Array.from({ length: 500 }, () => 't3.micro,').join('\n');
    const err = failure(`${H}${rows}\n`, { maxProblems: 5 });
    expect(err.details).toHaveLength(6);
    expect(err.details[5]).toBe('... and 495 more problems');
    const one = failure(`${H}t3.micro,\nt3.micro,\n`, { maxProblems: 1 });
    expect(one.details[1]).toBe('... and 1 more problem');
  });

  it('says "1 problem" for one', () => {
    expect(failure(`${H}t3.micro,\n`).message).toBe(`The job file ${FILE} has 1 problem.`);
  });
});

describe('parseJobText: good files', () => {
  it('numbers tasks from 1 in file order', () => {
    const tasks = parseJobText(`${H}t3.micro,echo 1\nc5.2xlarge,echo 2\nlocal,echo 3\n`, FILE);
    expect(tasks).toEqual([
      { task: 1, instanceType: 't3.micro', command: 'echo 1' },
      { task: 2, instanceType: 'c5.2xlarge', command: 'echo 2' },
      { task: 3, instanceType: 'local', command: 'echo 3' },
    ]);
  });

  it('keeps commas and quotes inside quoted commands', () => {
    const tasks = parseJobText(`${H}t3.micro,"echo a,b"\nt3.micro,"echo ""hi"""\nt3.micro,"python x.py --label ""a, b"" --n 2"\n`, FILE);
    expect(tasks.map((t) => t.command)).toEqual(['echo a,b', 'echo "hi"', 'python x.py --label "a, b" --n 2']);
  });

  it('keeps quotes inside unquoted commands as they are', () => {
    const tasks = parseJobText(`${H}t3.micro,echo "hi" 'there'\nt3.micro,python run.py --name "x"\n`, FILE);
    expect(tasks.map((t) => t.command)).toEqual([`echo "hi" 'there'`, 'python run.py --name "x"']);
  });

  it('keeps line breaks inside quoted commands', () => {
    const tasks = parseJobText(`${H}t3.micro,"set -e\ncd work\n./run.sh"\nt3.micro,echo 2\n`, FILE);
    expect(tasks.map((t) => t.command)).toEqual(['set -e\ncd work\n./run.sh', 'echo 2']);
    expect(tasks.map((t) => t.task)).toEqual([1, 2]);
  });

  it('reads CRLF files (and CRLF inside quotes becomes LF)', () => {
    const tasks = parseJobText('instance_type,command\r\nt3.micro,echo 1\r\nt3.micro,"a\r\nb"\r\n', FILE);
    expect(tasks.map((t) => t.command)).toEqual(['echo 1', 'a\nb']);
  });

  it('reads lone-CR and mixed line ends', () => {
    expect(parseJobText('instance_type,command\rt3.micro,echo 1\rt3.micro,echo 2', FILE)).toHaveLength(2);
    expect(parseJobText('instance_type,command\r\nt3.micro,echo 1\nt3.micro,echo 2\r\n', FILE)).toHaveLength(2);
  });

  it('reads big files with old-Mac (CR) line ends, no commas or too many', () => {
    // That they take linear time (the last two would take 5 s or more each if csv-parse expected
    // rows as wide as the header: see readCsv) is measured by `npm run bench:jobfile`.
    const rows = Array.from({ length: 200_000 }, (_, i) => `t3.micro,echo ${i}`);
    expect(parseJobText(`instance_type,command\r${rows.join('\r')}`, FILE)).toHaveLength(200_000);
    expect(failure(`${H}${'x\n'.repeat(200_000)}`).problemCount).toBe(200_000);
    expect(failure(`${H}${'t3.micro,echo a,b\n'.repeat(200_000)}`).problemCount).toBe(200_000);
  });

  it('skips a UTF-8 byte order mark', () => {
    const data = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${H}t3.micro,echo 1\n`)]);
    expect(parseJobText(data, FILE)).toEqual([{ task: 1, instanceType: 't3.micro', command: 'echo 1' }]);
    expect(parseJobText(`\uFEFF${H}t3.micro,echo 1\n`, FILE)).toHaveLength(1);
  });

  it('does not need a trailing newline', () => {
    const tasks = parseJobText(`${H}t3.micro,echo 1\nt3.micro,echo 2`, FILE);
    expect(tasks.map((t) => t.command)).toEqual(['echo 1', 'echo 2']);
    expect(parseJobText(`${H}t3.micro,"echo 1"`, FILE)[0]?.command).toBe('echo 1');
  });

  it('skips blank lines without giving them task numbers', () => {
    const tasks = parseJobText(`\n\n${H}\nt3.micro,echo 1\n   \n,\n , \t\n\nt3.micro,echo 2\n\n`, FILE);
    expect(tasks).toEqual([
      { task: 1, instanceType: 't3.micro', command: 'echo 1' },
      { task: 2, instanceType: 't3.micro', command: 'echo 2' },
    ]);
  });

  it('accepts the header in any case, with spaces, in either order', () => {
    expect(parseJobText(' Instance_Type , COMMAND \nt3.micro,echo 1\n', FILE)).toHaveLength(1);
    const tasks = parseJobText('command,instance_type\necho 1,t3.micro\n"echo a,b",c5.large\n', FILE);
    expect(tasks).toEqual([
      { task: 1, instanceType: 't3.micro', command: 'echo 1' },
      { task: 2, instanceType: 'c5.large', command: 'echo a,b' },
    ]);
    expect(parseJobText('"instance_type","command"\n"t3.micro","echo 1"\n', FILE)).toHaveLength(1);
  });

  it('trims the instance type and keeps the command exactly', () => {
    const tasks = parseJobText(`${H} t3.micro\t,  echo hi  \n`, FILE);
    expect(tasks).toEqual([{ task: 1, instanceType: 't3.micro', command: '  echo hi  ' }]);
  });

  it('accepts local unless the job is for aws', () => {
    expect(parseJobText(`${H}local,echo\n`, FILE, { backend: 'local' })).toHaveLength(1);
    expect(parseJobText(`${H}t3.micro,echo\n`, FILE, { backend: 'aws' })).toHaveLength(1);
  });

  it('accepts non-ASCII commands', () => {
    const tasks = parseJobText(Buffer.from(`${H}t3.micro,echo héllo ✓ 日本\n`), FILE);
    expect(tasks[0]?.command).toBe('echo héllo ✓ 日本');
  });

  it('accepts a command of exactly MAX_COMMAND_BYTES bytes', () => {
    expect(MAX_COMMAND_BYTES).toBe(128 * 1024 - 1);
    const cmd = `echo ${'x'.repeat(MAX_COMMAND_BYTES - 5)}`;
    expect(parseJobText(`${H}t3.micro,${cmd}\n`, FILE)[0]?.command).toBe(cmd);
    const twoByte = `echo ${'é'.repeat((MAX_COMMAND_BYTES - 5) >> 1)}`;
    expect(Buffer.byteLength(twoByte)).toBeLessThanOrEqual(MAX_COMMAND_BYTES);
    expect(parseJobText(`${H}t3.micro,${twoByte}\n`, FILE)).toHaveLength(1);
  });

  it('gives the same tasks for text and bytes', () => {
    const text = `${H}t3.micro,"echo ""a,b"""\n\nm7i-flex.large,echo é\n`;
    expect(parseJobText(Buffer.from(text), FILE)).toEqual(parseJobText(text, FILE));
  });

  it('reads back what csv-stringify writes (2,000 random files)', () => {
    // Commands made of the characters that CSV quoting is about; csv-stringify quotes as needed
    // (or every field), with LF, CRLF or CR line ends and sometimes a BOM. Blank lines and a bad
    // row at the end check the line numbers.
    const alphabet = ['a', 'b', ' ', ',', '"', '""', '\n', '\r\n', '\r', "'", 'é', '✓', '\t', ';', 'x'];
    const types = ['t3.micro', 'c5n.2xlarge', 'local', 'm7i-flex.large'];
    const eols = { unix: '\n', windows: '\r\n', mac: '\r' } as const;
    const rnd = random(12345);
    for (let f = 0; f < 2000; f++) {
      const rows: [string, string][] = [];
      for (let r = 1 + rnd(6); r > 0; r--) {
        let cmd = rnd(4) ? 'x' : '"'; // sometimes a command that starts with a quote
        for (let k = rnd(12); k > 0; k--) cmd += alphabet[rnd(alphabet.length)] ?? '';
        rows.push([types[rnd(types.length)] ?? 't3.micro', cmd]);
      }
      const eol = (['unix', 'windows', 'mac'] as const)[rnd(3)] ?? 'unix';
      const csv = csvStringify([['instance_type', 'command'], ...rows], {
        record_delimiter: eol,
        quote_record_delimiter: true,
        quoted: rnd(4) === 0,
        bom: rnd(4) === 0,
      });
      const want = rows.map(([type, cmd]) => ({ instanceType: type, command: cmd.replace(/\r\n?/g, '\n') }));
      expect(parseJobText(csv, FILE).map(({ instanceType, command }) => ({ instanceType, command }))).toEqual(want);

      const blanks = eols[eol].repeat(rnd(3));
      const bad = `${csv}${blanks}T3,echo${eols[eol]}`;
      const err = failure(bad);
      expect(err.problemCount).toBe(1);
      expect(err.problems[0]?.line).toBe(linesIn(csv) + blanks.length / eols[eol].length + 1);
    }
  });

  it('keeps a quote inside an unquoted field, even doubled', () => {
    const csv = `${H}t3.micro,echo "hi"\nt3.micro,a "b" c\nt3.micro,x""y\nt3.micro,echo '"'\n`;
    expect(parseJobText(csv, FILE).map((t) => t.command)).toEqual(['echo "hi"', 'a "b" c', 'x""y', `echo '"'`]);
  });

  it('reads a command that starts with a quote, next to a malformed one', () => {
    expect(parseJobText(`${H}t3.micro,"""my prog"" --x"\n`, FILE)[0]?.command).toBe('"my prog" --x');
    const err = failure(`${H}t3.micro,"""my prog"" --x"\nt3.micro,"my prog" --x\nt3.micro,\n`);
    expect(err.problems.map((p) => [p.line, p.column])).toEqual([
      [3, 'command'],
      [4, 'command'],
    ]);
    expect(err.problems[0]?.message).toContain('not doubled (a space follows');
  });

  it('numbers lines across the pieces a big file is parsed in', () => {
    // About 1.8 MB, so that many multi-line quoted commands straddle the ends of the pieces given
    // to csv-parse; with blank lines, mixed line ends, and bad rows at known lines.
    const rnd = random(7);
    const pick = <T,>(xs: readonly T[]): T => xs[rnd(xs.length)] as T;
    const parts = [H];
    let line = 1; // lines so far
    let afterCr = false;
    const add = (content: string, breaks: number) => {
      let eol = pick(['\n', '\r\n', '\r']);
      if (afterCr && content === '' && eol === '\n') eol = '\r\n'; // "\r" + "\n" would be one line end
      parts.push(content + eol);
      afterCr = eol === '\r';
      line += 1 + breaks;
    };
    const tasks: { instanceType: string; command: string }[] = [];
    const badLines: number[] = [];
    for (let i = 0; i < 40_000; i++) {
      if (rnd(10) === 0) add(pick(['', ' ', ',']), 0);
      if (rnd(500) === 0) {
        badLines.push(line + 1);
        add(pick(['T3,echo', 't3.micro,', 't3.micro,"x"y', 't3.micro,a,b']), 0);
        continue;
      }
      const command = rnd(3) ? `echo ${i} ${'x'.repeat(rnd(40))}` : `echo "${i}"${pick(['\n', '\r\n', '\r', ','])}echo ${'y'.repeat(rnd(40))}`;
      const quoted = /[",\r\n]/.test(command) ? `"${command.replace(/"/g, '""')}"` : command;
      add(`t3.micro,${quoted}`, linesIn(command));
      tasks.push({ instanceType: 't3.micro', command: command.replace(/\r\n?/g, '\n') });
    }
    const text = parts.join('');
    expect(text.length).toBeGreaterThan(1_500_000);
    const err = failure(text, { maxProblems: 1000 });
    expect(badLines.length).toBeGreaterThan(40);
    expect(err.problems.map((p) => p.line)).toEqual(badLines);

    // The same rows without the bad ones: every task, in order.
    const clean = H + tasks.map((t) => `t3.micro,"${t.command.replace(/"/g, '""')}"${pick(['\n', '\r\n'])}`).join('');
    const parsed = parseJobText(clean, FILE);
    expect(parsed.map(({ instanceType, command }) => ({ instanceType, command }))).toEqual(tasks);
    expect(parsed.at(-1)?.task).toBe(tasks.length);
  });

  it('gives the line each task starts on, the one a later message about the task names', () => {
    const small = parseJobTextWithLines(`\n${H}t3.micro,"echo a\r\necho b"\n\n , \nt3.micro,echo 2\r\rt3.micro,echo 3`, FILE);
    expect(small.tasks.map((t) => t.task)).toEqual([1, 2, 3]);
    expect(small.lines).toEqual([3, 7, 9]);
    expect(parseJobTextWithLines(`\uFEFF${H}t3.micro,echo 1\n`, FILE).lines).toEqual([2]);

    // About 0.6 MB: multi-line commands straddle the ends of the pieces given to csv-parse.
    const rnd = random(11);
    const pick = <T,>(xs: readonly T[]): T => xs[rnd(xs.length)] as T;
    const parts = [H];
    const want: number[] = [];
    let line = 2;
    for (let i = 0; i < 15_000; i++) {
      if (rnd(8) === 0) {
        parts.push(pick(['\n', ' \r\n', ',,\n']));
        line++;
      }
      const command = rnd(3) ? `echo ${i} ${'x'.repeat(rnd(30))}` : `echo ${i}${pick(['\n', '\r\n', '\r'])}echo ${'y'.repeat(rnd(30))}`;
      parts.push(`t3.micro,"${command}"${pick(['\n', '\r\n'])}`);
      want.push(line);
      line += 1 + linesIn(command);
    }
    const parsed = parseJobTextWithLines(parts.join(''), FILE);
    expect(parsed.tasks).toHaveLength(15_000);
    expect(parsed.lines).toEqual(want);
    expect(parseJobText(parts.join(''), FILE)).toEqual(parsed.tasks);
  });

  it('reports a quote never closed near the start of a big file', () => {
    const rows = Array.from({ length: 50_000 }, (_, i) => `t3.micro,echo ${i} ${'x'.repeat(30)}`);
    const err = failure(`${H}T3,echo\nt3.micro,"echo\n${rows.join('\n')}\n`);
    expect(err.problems.map((p) => p.line)).toEqual([2, 3]);
    expect(err.problems[1]?.message).toBe('a quoted field opened on this line is never closed (lines 3–50003 were read as one field)');
  });
});

describe('instance types', () => {
  const VALID = [
    't3.micro', 't2.nano', 't4g.small', 'a1.medium', 'c5.large', 'c5n.xlarge', 'm5.2xlarge', 'p4d.24xlarge',
    'm7i-flex.large', 'c7i-flex.8xlarge', 'u-6tb1.metal', 'u-12tb1.112xlarge', 'u7i-12tb.224xlarge', 'u7in-32tb.224xlarge',
    'x2iedn.metal', 'r7iz.metal-16xl', 'x8g.metal-48xl', 'mac1.metal', 'mac2-m2pro.metal', 'g4dn.metal', 'inf2.48xlarge',
    'trn1n.32xlarge', 'hpc7g.16xlarge', 'im4gn.large', 'i4i.32xlarge', 'z1d.12xlarge', 'dl1.24xlarge',
  ];
  const INVALID = [
    '', 'T2.Small', 't2small', 't2.', '.small', 't.small', 't2.smalll', 't2.0xlarge', 't2.small.x', 't2-.small',
    'local ', ' t3.micro', 'm5.xxlarge', 't3.metal-', 't3.metal-4', 'u-6tb.metal', 'c5.large;rm -rf /', 't3.micro\n',
  ];

  it.each(VALID)('accepts %s', (s) => {
    expect(isEc2InstanceType(s)).toBe(true);
    expect(isValidInstanceType(s)).toBe(true);
  });

  it.each(INVALID)('rejects %j', (s) => {
    expect(isValidInstanceType(s)).toBe(false);
  });

  it('accepts local as a job-file instance type but not as an EC2 one', () => {
    expect(isValidInstanceType('local')).toBe(true);
    expect(isEc2InstanceType('local')).toBe(false);
  });

  it.each([
    ['T2.Small', 't2.small'],
    ['t2small', 't2.small'],
    ['t3_micro', 't3.micro'],
    ['t2-small', 't2.small'],
    ['m7i-flex-large', 'm7i-flex.large'],
    ['c5n2xlarge', 'c5n.2xlarge'],
    ['m52xlarge', 'm5.2xlarge'],
    ['m5.xxlarge', 'm5.2xlarge'],
    ['t3.2xl', 't3.2xlarge'],
    ['t3.smal', 't3.small'],
    ['t3.mediun', 't3.medium'],
    ['t3..micro', 't3.micro'],
    [' T3.MICRO ', 't3.micro'],
    ['LOCAL', 'local'],
    ['localhost', 'local'],
  ])('suggests %j → %j', (raw, want) => {
    expect(suggestInstanceType(raw)).toBe(want);
  });

  it.each(['banana', 'instance_type', 'x', '12345'])('suggests nothing for %j', (raw) => {
    expect(suggestInstanceType(raw)).toBeUndefined();
  });
});

describe('parseJobFile', () => {
  it('reads a good file', async () => {
    const tasks = await parseJobFile(join(FIXTURES, 'good.csv'));
    expect(tasks).toEqual([
      { task: 1, instanceType: 't3.micro', command: 'python run.py --seed 1' },
      { task: 2, instanceType: 'c5.2xlarge', command: 'python run.py --label "a,b"' },
      { task: 3, instanceType: 'local', command: 'echo "hello"' },
    ]);
  });

  it('reads a file as Excel saves it ("CSV UTF-8": BOM, CRLF, quoted fields)', async () => {
    const tasks = await parseJobFile(join(FIXTURES, 'excel-export.csv'));
    expect(tasks).toEqual([
      { task: 1, instanceType: 't3.micro', command: 'python run.py --label "a,b" --n 2' },
      { task: 2, instanceType: 'c5.2xlarge', command: 'set -e\ncd work\n./run.sh' },
      { task: 3, instanceType: 'local', command: 'echo "hi"' },
    ]);
  });

  it('names the file as given in every detail', async () => {
    const path = join(FIXTURES, 'several-problems.csv');
    const err = await parseJobFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFileError);
    const e = err as JobFileError;
    expect(e.message).toBe(`The job file ${path} has 4 problems.`);
    expect(e.problems.map((p) => p.line)).toEqual([3, 4, 6, 7]);
    expect(e.details[0]).toBe(
      `${path}:3: column "instance_type": "T2.Small" is not an instance type (instance types are lower case) — did you mean "t2.small"?`,
    );
  });

  it('reports a latin-1 file with its line', async () => {
    const err = (await parseJobFile(join(FIXTURES, 'latin1.csv')).catch((e: unknown) => e)) as JobFileError;
    expect(err.problems[0]?.line).toBe(3);
    expect(err.problems[0]?.message).toContain('not UTF-8');
  });

  it('reports a semicolon-separated file once', async () => {
    const err = (await parseJobFile(join(FIXTURES, 'semicolons.csv')).catch((e: unknown) => e)) as JobFileError;
    expect(err.problemCount).toBe(1);
    expect(err.problems[0]?.message).toContain('separated by ";"');
  });

  it('says when the file does not exist or is a folder', async () => {
    const missing = join(TMP, 'nope.csv');
    await expect(parseJobFile(missing)).rejects.toThrow(`The job file ${missing} does not exist.`);
    await expect(parseJobFile(missing)).rejects.toBeInstanceOf(UserError);
    await expect(parseJobFile(TMP)).rejects.toThrow('is a folder, not a job file');
  });

  it('refuses a file over the size limit before reading it', async () => {
    const path = join(TMP, 'huge.csv');
    writeFileSync(path, H);
    truncateSync(path, MAX_JOB_FILE_BYTES + 50 * 1024 * 1024); // sparse: no disk used
    fsReads.mockClear();
    const err = (await parseJobFile(path).catch((e: unknown) => e)) as JobFileError;
    expect(fsReads).not.toHaveBeenCalled(); // (how fast: npm run bench:jobfile)
    expect(err).toBeInstanceOf(JobFileError);
    expect(err.problems[0]?.line).toBe(0);
    expect(err.details[0]).toBe(
      `${path}: the file is 250 MiB; the limit is 200 MiB — split ${path} into several job files and submit each as its own job`,
    );
    // (The count sees the reads: a file within the limit is read once.)
    writeFileSync(path, `${H}t3.micro,echo 1\n`);
    await parseJobFile(path);
    expect(fsReads).toHaveBeenCalledTimes(1);
    rmSync(path);
  });

  it('reports a 1 MB command with its line', async () => {
    const path = join(TMP, 'long-command.csv');
    writeFileSync(path, `${H}t3.micro,echo 1\nt3.micro,echo ${'y'.repeat(1024 * 1024)}\nt3.micro,echo 3\n`);
    const err = (await parseJobFile(path).catch((e: unknown) => e)) as JobFileError;
    expect(err.problemCount).toBe(1);
    expect(err.problems[0]).toMatchObject({ line: 3, column: 'command' });
    expect(err.problems[0]?.message).toBe('the command is 1,048,581 bytes long; the limit is 131,071 bytes (128 KiB)');
  });

  it('parses a 50 MB file of 1,000,000 tasks within bounded memory', async () => {
    const path = join(TMP, 'big-good.csv');
    // Written in chunks so that making the file leaves little garbage behind.
    const fd = openSync(path, 'w');
    writeSync(fd, H);
    for (let start = 1; start <= 1_000_000; start += 50_000) {
      let chunk = '';
      for (let i = start; i < start + 50_000; i++) chunk += `c5.xlarge,python run.py --seed ${i} --out out/${i}.json\n`;
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(50_000_000);

    const before = process.memoryUsage();
    const t0 = performance.now();
    const tasks = await parseJobFile(path);
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    // maxRSS is the high-water mark of the whole process, so this over-states the parse's peak.
    const peakGrowth = process.resourceUsage().maxRSS * 1024 - before.rss;

    expect(tasks).toHaveLength(1_000_000);
    expect(tasks[999_999]).toEqual({ task: 1_000_000, instanceType: 'c5.xlarge', command: 'python run.py --seed 1000000 --out out/1000000.json' });
    // Every instance type string is shared, not one copy per task.
    expect(tasks[0]?.instanceType).toBe(tasks[1]?.instanceType);
    const mb = (n: number) => (n / 1e6).toFixed(0);
    console.log(
      `${mb(size)} MB / 1M rows: ${ms.toFixed(0)} ms; heap +${mb(after.heapUsed - before.heapUsed)} MB with the tasks held; ` +
        `RSS +${mb(after.rss - before.rss)} MB; peak RSS at most +${mb(peakGrowth)} MB`,
    );
    expect(peakGrowth).toBeLessThan(12 * size);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * size);
    rmSync(path);
  });

  it('finds the one bad row among 1,000,000 (line 765432)', async () => {
    const path = join(TMP, 'big-bad.csv');
    const rows: string[] = [];
    for (let i = 1; i <= 1_000_000; i++) rows.push(i === 765_431 ? 't3.micro,' : `t3.micro,python run.py --seed ${i}`);
    writeFileSync(path, `${H}${rows.join('\n')}\n`);
    rows.length = 0;
    // How fast, beside csv-parse alone: npm run bench:jobfile.
    const err = (await parseJobFile(path).catch((e: unknown) => e)) as JobFileError;
    expect(err).toBeInstanceOf(JobFileError);
    expect(err.problemCount).toBe(1);
    expect(err.problems[0]).toMatchObject({ line: 765_432, column: 'command', message: 'the command is empty' });
    expect(err.details[0]).toBe(
      `${path}:765432: column "command": the command is empty — write the shell command to run for this task`,
    );
    rmSync(path);
  });

  it('reports random binary data as not text', async () => {
    const path = join(TMP, 'random.bin');
    writeFileSync(path, randomBytes(1024 * 1024));
    const err = (await parseJobFile(path).catch((e: unknown) => e)) as JobFileError;
    expect(err.problemCount).toBe(1);
    expect(err.details[0]).toContain(`${path}: the file is not a text file`);
  });

  it('works from a sub-folder path', async () => {
    const dir = join(TMP, 'config');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'jobdetails.csv'), `${H}t3.micro,echo 1\n`);
    expect(await parseJobFile(join(dir, 'jobdetails.csv'))).toHaveLength(1);
  });
});
