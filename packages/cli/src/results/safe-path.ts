/**
 * Turning artifact keys into paths under --out without ever writing outside it: keys with `..`,
 * absolute paths, backslashes or NULs are refused, and so is any existing symlink on the way.
 */
import { lstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '@gq/common';
import { isInside, plainRelativeKey } from '@gq/common/safe-path';

/** `rel` if it is a plain relative key (common safe-path.ts), else undefined. */
export const safeRelative = plainRelativeKey;

/** pathUnder met a symbolic link at `link` between the root and the file. */
export class SymlinkOnPathError extends UserError {
  constructor(readonly link: string) {
    super(`Refusing to write through the symbolic link ${link}.`, { hint: `Remove the link or choose another --out folder.` });
  }
}

/** The path for `rel` under `root`, or a UserError if it would leave `root` or pass a symlink. */
export function pathUnder(root: string, rel: string): string {
  const safe = safeRelative(rel);
  const absRoot = resolve(root);
  if (!safe) throw new UserError(`Refusing to write "${rel}": it would land outside ${root}.`, { hint: 'The bucket holds a key that is not a plain relative path; remove it.' });
  const dest = join(absRoot, ...safe.split('/'));
  if (!isInside(absRoot, dest)) throw new UserError(`Refusing to write "${rel}" outside ${root}.`);
  // No symlink may stand anywhere between root and the file (it could point elsewhere): one
  // lstat a segment (it sees a dangling link too), down to the first that does not exist (nothing
  // below it can). gq results makes this check twice for each of 200,000 files: syscalls count.
  let cur = absRoot;
  for (const p of safe.split('/')) {
    cur = join(cur, p);
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) break;
    if (st.isSymbolicLink()) throw new SymlinkOnPathError(cur);
  }
  return dest;
}
