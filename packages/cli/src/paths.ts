/** Checks of the paths a user gives to submit (all before anything is written). */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, normalize, resolve } from 'node:path';
import { keys, UserError, type InputMapping } from '@gq/common';

/** An example of each flag that takes a path inside the code folder. */
const EXAMPLES: Record<string, string> = {
  '--results': '--results results/results.csv (the file <code>/results/results.csv)',
  '--output': '--output logs/solver.log (the file <code>/logs/solver.log)',
  '--input': '--input ../data=data (your ../data folder becomes <code>/data in every task)',
};

/** A path relative to the code folder that stays inside it. Returns it normalised with / separators. */
export function relativeInside(what: string, flag: string, p: string): string {
  const example = EXAMPLES[flag] ? ` For example ${EXAMPLES[flag]}.` : '';
  if (!p || !p.trim()) throw new UserError(`${what} is empty.`, { hint: `Give ${flag} a path relative to the code folder.${example}` });
  if (p.includes('\0')) throw new UserError(`${what} ${JSON.stringify(p)} contains a NUL character.`, { hint: `Give ${flag} a plain relative path.${example}` });
  if (isAbsolute(p) || /^[A-Za-z]:[\\/]/.test(p)) {
    throw new UserError(`${what} "${p}" is absolute; it must be relative to the code folder.`, {
      hint: `Write it relative to the code folder.${example}`,
    });
  }
  const n = normalize(p).replace(/\\/g, '/');
  if (n === '..' || n.startsWith('../')) {
    throw new UserError(`${what} "${p}" leads outside the code folder.`, {
      hint: `Use a path inside the code folder, without "..".${example}`,
    });
  }
  if (n === '.' || n === './') {
    throw new UserError(`${what} "${p}" is the code folder itself; it must name a ${flag === '--output' ? 'file or folder' : flag === '--input' ? 'folder' : 'file'} inside it.`, {
      hint: `Name a path inside the code folder.${example}`,
    });
  }
  return n.replace(/\/+$/, '');
}

export function existingDir(what: string, flag: string, p: string): string {
  const abs = resolve(p);
  if (!existsSync(abs)) throw new UserError(`${what} ${p} does not exist.`, { hint: `Check the path given to ${flag}.` });
  if (!statSync(abs).isDirectory()) throw new UserError(`${what} ${p} is not a folder.`, { hint: `${flag} takes a folder.` });
  return abs;
}

export function existingFile(what: string, flag: string, p: string, opts: { nonEmpty?: boolean } = {}): string {
  const abs = resolve(p);
  if (!existsSync(abs)) throw new UserError(`${what} ${p} does not exist.`, { hint: `Check the path given to ${flag}.` });
  const st = statSync(abs);
  if (!st.isFile()) throw new UserError(`${what} ${p} is not a file.`, { hint: `${flag} takes a file.` });
  if (opts.nonEmpty && st.size === 0) throw new UserError(`${what} ${p} is empty.`, { hint: `Put the content in ${p} or drop ${flag}.` });
  return abs;
}

/** --input LOCAL=REMOTE: LOCAL must exist; REMOTE is a relative path inside the code folder. */
export function parseInput(spec: string): InputMapping {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) {
    throw new UserError(`--input "${spec}" is not LOCAL=REMOTE${eq < 0 ? ' (there is no "=")' : eq === 0 ? ' (LOCAL is empty)' : ' (REMOTE is empty)'}.`, {
      hint: 'Example: --input ../data=data (copies ../data to data/ inside every task\'s code folder).',
    });
  }
  const local = spec.slice(0, eq);
  const remote = relativeInside('--input destination', '--input', spec.slice(eq + 1));
  const abs = resolve(local);
  if (!existsSync(abs)) throw new UserError(`--input source ${local} does not exist.`, { hint: `Check the LOCAL part of --input ${spec} (relative paths start at the current folder, ${process.cwd()}).` });
  return { local: abs, remote };
}

/**
 * Object keys are at most 1024 bytes of UTF-8 on S3 (and in the local store):
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html. A task's results file and
 * outputs are stored under `jobs/<job>/tasks/<task>/files/<path>`: refuse, before anything is
 * written, a path that would make that key too long for the job's largest task number (a file
 * found under an --output folder adds its own name to this, so keep well below the limit).
 */
export const MAX_KEY_BYTES = 1024;
export function checkKeyRoom(job: string, lastTask: number, paths: ReadonlyArray<{ flag: string; path: string }>): void {
  for (const { flag, path } of paths) {
    const bytes = Buffer.byteLength(keys.taskOutput(job, lastTask, path), 'utf8');
    if (bytes > MAX_KEY_BYTES) {
      const room = MAX_KEY_BYTES - Buffer.byteLength(keys.taskOutput(job, lastTask, ''), 'utf8');
      throw new UserError(`The path given to ${flag} is too long: task ${lastTask}'s copy would be stored under a ${bytes}-byte key, and S3 allows ${MAX_KEY_BYTES}.`, {
        hint: `Use a path of at most ${room} bytes (UTF-8) for job "${job}", or a shorter job name.`,
      });
    }
  }
}
