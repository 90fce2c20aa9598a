/**
 * The data rows of a job file: each row has the header's columns, a valid instance type and a
 * command that is not empty, has no NUL byte and fits MAX_COMMAND_BYTES. A good row becomes a
 * task (numbered from 1 among the rows) and keeps the line it starts on.
 */
import type { BackendName, NewTask } from '../model.js';
import { CMD, IT, JOB_FILE_HEADER, MAX_COMMAND_BYTES } from './format.js';
import type { Layout } from './header.js';
import { instanceTypeProblem } from './instance-types.js';
import type { Finding, Problems } from './problems.js';
import { rowSeparator } from './sniff.js';

const COMMAND_EMPTY_HINT = 'write the shell command to run for this task';

function formatBytes(n: number): string {
  return n.toLocaleString('en-US');
}

/** Whether a record is a blank line: no field with anything but whitespace. */
export function isBlank(fields: readonly string[]): boolean {
  for (const f of fields) if (f.trim() !== '') return false;
  return true;
}

/** Checks the data rows of one file in order, collecting the tasks while no problem has been found. */
export class Rows {
  /** The tasks, in file order. */
  readonly tasks: NewTask[] = [];
  /** lines[i]: the physical line where tasks[i] starts. */
  readonly lines: number[] = [];
  /** Rows seen so far, good or bad (the task number of the last one). */
  count = 0;
  /** Canonical instance type strings (one per distinct value), or the problem with a value. */
  private readonly typeCache = new Map<string, string | Finding>();

  /** `hasNul`: whether the file holds a NUL byte at all (commands are searched for one only then). */
  constructor(
    private readonly problems: Problems,
    private readonly backend: BackendName | undefined,
    private readonly hasNul: boolean,
  ) {}

  /** A row that is not valid CSV (already described by the CSV reader). */
  broken(line: number, column: string | undefined, message: string, hint: string): void {
    this.count++;
    this.problems.add(line, column, message, hint);
  }

  /** Checks one data row starting on `line`. */
  check(fields: string[], line: number, lay: Layout): void {
    const problems = this.problems;
    this.count++;
    if (fields.length !== lay.columns) {
      problems.add(line, undefined, ...columnCountProblem(fields, lay));
      return;
    }
    const rawType = fields[lay.it] ?? '';
    const command = fields[lay.cmd] ?? '';
    let ok = true;

    let type = this.typeCache.get(rawType);
    if (type === undefined) {
      type = instanceTypeProblem(rawType, this.backend) ?? rawType.trim();
      if (this.typeCache.size < 10_000) this.typeCache.set(rawType, type);
    }
    if (typeof type !== 'string') {
      problems.add(line, IT, type.message, type.hint);
      ok = false;
    }

    const bad = commandProblems(command, this.hasNul);
    for (const p of bad) problems.add(line, CMD, p.message, p.hint);
    if (bad.length > 0) ok = false;
    if (ok && problems.count === 0 && typeof type === 'string') {
      this.tasks.push({ task: this.count, instanceType: type, command });
      this.lines.push(line);
    }
  }
}

/** A row with another number of columns than the header: the message and the hint. */
function columnCountProblem(fields: readonly string[], lay: Layout): [message: string, hint: string] {
  const n = fields.length;
  const what = `expected ${lay.columns} columns (${lay.columns === 2 ? JOB_FILE_HEADER : 'as in the header'}) but found ${n}`;
  if (n < lay.columns) {
    const sep = rowSeparator(fields[0] ?? '');
    return [
      what,
      sep
        ? `separate the columns with a comma, not ${sep === '\t' ? 'a tab' : `"${sep}"`}`
        : 'put a comma between the instance type and the command, e.g. t3.micro,echo hello',
    ];
  }
  if (fields.slice(lay.columns).every((f) => f.trim() === '')) return [what, 'remove the extra commas at the end of the line'];
  return [
    what,
    'the command contains a comma: put the whole command in double quotes and write each quote inside it as "", e.g. t3.micro,"echo a,b"',
  ];
}

const NO_PROBLEMS: readonly Finding[] = [];

/** What is wrong with a command as written (kept exactly: no trimming); none for a good one. */
function commandProblems(command: string, hasNul: boolean): readonly Finding[] {
  if (command.length === 0) return [{ message: 'the command is empty', hint: COMMAND_EMPTY_HINT }];
  if (!/\S/.test(command)) return [{ message: 'the command is only whitespace', hint: COMMAND_EMPTY_HINT }];
  const out: Finding[] = [];
  const nul = hasNul ? command.indexOf('\0') : -1;
  if (nul >= 0) {
    out.push({
      message: `the command contains a NUL byte (at character ${nul + 1})`,
      hint: 'remove it: a shell command cannot contain NUL bytes (was the file saved by a program that adds binary data?)',
    });
  }
  if (command.length * 3 > MAX_COMMAND_BYTES) {
    const bytes = Buffer.byteLength(command, 'utf8');
    if (bytes > MAX_COMMAND_BYTES) {
      out.push({
        message: `the command is ${formatBytes(bytes)} bytes long; the limit is ${formatBytes(MAX_COMMAND_BYTES)} bytes (128 KiB)`,
        hint: 'put the long part in a script in the code folder and run that script, e.g. t3.micro,bash run_task.sh 17',
      });
    }
  }
  return out.length > 0 ? out : NO_PROBLEMS;
}
