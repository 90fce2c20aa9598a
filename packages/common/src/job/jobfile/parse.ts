/**
 * Parsing a job file in one pass: the bytes sniffed, the CSV read record by record, the header
 * and then every row checked. Gives the tasks and the line each starts on, or throws one
 * JobFileError listing every problem found.
 */
import { readFile, stat } from 'node:fs/promises';
import { GqError, UserError } from '../../errors.js';
import type { BackendName, NewTask } from '../model.js';
import { CMD, DEFAULT_MAX_JOB_FILE_PROBLEMS, IT, JOB_FILE_HEADER, MAX_JOB_FILE_BYTES } from './format.js';
import { readCsv } from './csv.js';
import { DEFAULT_LAYOUT, readHeader, type Layout } from './header.js';
import { JobFileError, Problems } from './problems.js';
import { isBlank, Rows } from './rows.js';
import { sniffBytes, tooLarge } from './sniff.js';

export interface ParseJobOptions {
  /** Problems listed in the error (default 20); the others are only counted. */
  maxProblems?: number;
  /**
   * The backend the job is for. With 'aws' the instance type `local` is refused; without a
   * backend both `local` and EC2 instance types are accepted.
   */
  backend?: BackendName;
}

/** The tasks of a good job file, with the physical line each starts on. */
export interface ParsedJobFile {
  /** The tasks in file order, numbered from 1. */
  readonly tasks: NewTask[];
  /** lines[i]: the physical line of the file (1-based) where tasks[i] starts. */
  readonly lines: readonly number[];
}

/**
 * Parses and checks job-file content (bytes as read from disk, or text). `fileLabel` names the
 * file in messages. Returns the tasks in file order, numbered from 1, and their lines; throws a
 * JobFileError (a UserError) listing the problems when there is any.
 */
export function parseJobTextWithLines(data: Buffer | Uint8Array | string, fileLabel: string, opts: ParseJobOptions = {}): ParsedJobFile {
  const max = opts.maxProblems ?? DEFAULT_MAX_JOB_FILE_PROBLEMS;
  const problems = new Problems(max > 0 ? max : DEFAULT_MAX_JOB_FILE_PROBLEMS);
  const fail = (): never => {
    throw new JobFileError(fileLabel, problems.list, problems.count);
  };

  const buf = sniffBytes(data, fileLabel, problems) ?? fail();
  const rows = new Rows(problems, opts.backend, buf.includes(0));
  let layout: Layout | undefined;
  let headerLine = 0;
  let stop = false;

  readCsv(buf, {
    get done() {
      return stop;
    },
    record(fields, line) {
      if (stop || isBlank(fields)) return;
      if (!layout) {
        headerLine = line;
        const h = readHeader(fields, line, problems);
        layout = h.layout;
        stop = h.stop;
        if (h.isData) rows.check(fields, line, layout);
        return;
      }
      rows.check(fields, line, layout);
    },
    broken(line, field, message, hint) {
      if (stop) return;
      if (!layout) {
        headerLine = line;
        layout = DEFAULT_LAYOUT;
        problems.add(line, undefined, `the header line is not valid CSV: ${message}`, `the first line must be ${JOB_FILE_HEADER}`);
        return;
      }
      rows.broken(line, field === layout.cmd ? CMD : field === layout.it ? IT : undefined, message, hint);
    },
  });

  if (!layout) {
    const bomBytes = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    const hint = `write the header ${JOB_FILE_HEADER} and then one task per line`;
    problems.add(0, undefined, buf.length === bomBytes ? 'the file is empty' : 'the file has only blank lines', hint);
    fail();
  }
  if (layout && rows.count === 0 && !stop) {
    problems.add(
      headerLine,
      undefined,
      'the file has a header but no tasks',
      'add one line per task below the header, e.g. t3.micro,python run.py --seed 1',
    );
  }
  if (problems.count > 0) fail();
  return { tasks: rows.tasks, lines: rows.lines };
}

/**
 * Parses and checks job-file content (bytes as read from disk, or text). `fileLabel` names the
 * file in messages. Returns the tasks in file order, numbered from 1; throws a JobFileError
 * (a UserError) listing the problems when there is any.
 */
export function parseJobText(data: Buffer | Uint8Array | string, fileLabel: string, opts: ParseJobOptions = {}): NewTask[] {
  return parseJobTextWithLines(data, fileLabel, opts).tasks;
}

/**
 * Reads, parses and checks a job file, giving its tasks and the line each starts on. Refuses a
 * file over MAX_JOB_FILE_BYTES before reading it. Throws a UserError for a missing or unreadable
 * file, a JobFileError (a UserError) listing every problem found in a bad one.
 */
export async function parseJobFileWithLines(path: string, opts: ParseJobOptions = {}): Promise<ParsedJobFile> {
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
  return parseJobTextWithLines(data, path, opts);
}

/** Reads, parses and checks a job file: parseJobFileWithLines without the lines. */
export async function parseJobFile(path: string, opts: ParseJobOptions = {}): Promise<NewTask[]> {
  return (await parseJobFileWithLines(path, opts)).tasks;
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
