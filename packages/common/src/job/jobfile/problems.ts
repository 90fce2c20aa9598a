/**
 * Problems found in a job file and how they are shown: `file:line: column "x": message — hint`,
 * collected in file order (the first few kept, all counted) and thrown together as one
 * JobFileError.
 */
import { UserError } from '../../errors.js';
import { JOB_FILE_HEADER } from './format.js';

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

/** What is wrong with a value or a file, and how to fix it (a problem without its place). */
export interface Finding {
  message: string;
  hint: string;
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

/** The problems of one file: the first `max` kept in file order, all counted. */
export class Problems {
  readonly list: JobFileProblem[] = [];
  count = 0;
  constructor(private readonly max: number) {}
  add(line: number, column: string | undefined, message: string, hint: string): void {
    this.count++;
    if (this.list.length < this.max) this.list.push(column ? { line, column, message, hint } : { line, message, hint });
  }
}

/** Shows a value from the file in a message: quoted, escaped, shortened. */
export function show(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}
