/** Checks of the paths a user gives to submit (all before anything is written). */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, normalize, resolve } from 'node:path';
import { UserError, type InputMapping } from '@gq/common';

/** A path relative to the code folder that stays inside it. Returns it normalised with / separators. */
export function relativeInside(what: string, flag: string, p: string): string {
  if (!p || !p.trim()) throw new UserError(`${what} is empty.`, { hint: `Give ${flag} a path relative to the code folder.` });
  if (isAbsolute(p)) {
    throw new UserError(`${what} "${p}" is absolute; it must be relative to the code folder.`, {
      hint: `For example ${flag} results/results.csv for <code>/results/results.csv.`,
    });
  }
  const n = normalize(p).replace(/\\/g, '/');
  if (n === '..' || n.startsWith('../') || n === '.' || n.includes('\0')) {
    throw new UserError(`${what} "${p}" leads outside the code folder.`, {
      hint: 'Use a path inside the code folder, without "..".',
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
    throw new UserError(`--input "${spec}" is not LOCAL=REMOTE.`, {
      hint: 'Example: --input ../data=data (copies ../data to data/ inside every task\'s code folder).',
    });
  }
  const local = spec.slice(0, eq);
  const remote = relativeInside('--input destination', '--input', spec.slice(eq + 1));
  const abs = resolve(local);
  if (!existsSync(abs)) throw new UserError(`--input source ${local} does not exist.`, { hint: 'Check the LOCAL part of --input LOCAL=REMOTE.' });
  return { local: abs, remote };
}
