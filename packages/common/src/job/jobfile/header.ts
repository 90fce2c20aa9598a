/**
 * The header line of a job file: the two columns in either order, in any case; otherwise what is
 * wrong with it (another separator, no header at all, a misnamed, missing or extra column) and a
 * layout to check the rows with all the same.
 */
import { CMD, IT, JOB_FILE_HEADER } from './format.js';
import { isValidInstanceType, suggestInstanceType } from './instance-types.js';
import { show, type Problems } from './problems.js';
import { headerSeparator } from './sniff.js';

/** Where the columns of the data rows are. */
export interface Layout {
  readonly columns: number;
  readonly it: number;
  readonly cmd: number;
}

/** The layout of a file whose header could not be read. */
export const DEFAULT_LAYOUT: Layout = { columns: 2, it: 0, cmd: 1 };

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

/**
 * Reads the header record. Returns the layout to read data rows with (a guess when the header is
 * wrong, so that the rows can still be checked), whether the header line itself is a task, and
 * whether rows can be checked at all.
 */
export function readHeader(
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
    const sep = headerSeparator(names[0] ?? '');
    if (sep) {
      problems.add(
        line,
        undefined,
        `the columns are separated by ${sep === '\t' ? 'tabs' : `"${sep}"`}, not commas`,
        `save the file as comma-separated CSV ("CSV UTF-8 (Comma delimited)" in Excel); the header must be ${JOB_FILE_HEADER}`,
      );
      return { layout: DEFAULT_LAYOUT, isData: false, stop: true };
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
    return { layout: DEFAULT_LAYOUT, isData: true, stop: false };
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
