/**
 * Turning artifact keys into paths under --out without ever writing outside it: keys with `..`,
 * absolute paths, backslashes or NULs are refused, and so is any existing symlink on the way.
 */
import { existsSync, lstatSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { UserError } from '@gq/common';

/** pathUnder met a symbolic link at `link` between the root and the file. */
export class SymlinkOnPathError extends UserError {
  constructor(readonly link: string) {
    super(`Refusing to write through the symbolic link ${link}.`, { hint: `Remove the link or choose another --out folder.` });
  }
}

export function safeRelative(rel: string): string | undefined {
  if (!rel || rel.includes('\0') || rel.includes('\\') || rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) return undefined;
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
  return parts.join('/');
}

/** The path for `rel` under `root`, or a UserError if it would leave `root` or pass a symlink. */
export function pathUnder(root: string, rel: string): string {
  const safe = safeRelative(rel);
  const absRoot = resolve(root);
  if (!safe) throw new UserError(`Refusing to write "${rel}": it would land outside ${root}.`, { hint: 'The bucket holds a key that is not a plain relative path; remove it.' });
  const dest = join(absRoot, ...safe.split('/'));
  const r = relative(absRoot, dest);
  if (r.startsWith('..') || r.startsWith(sep)) throw new UserError(`Refusing to write "${rel}" outside ${root}.`);
  // No symlink may stand anywhere between root and the file (it could point elsewhere).
  let cur = absRoot;
  for (const p of safe.split('/')) {
    cur = join(cur, p);
    if (existsSync(cur) || isDanglingLink(cur)) {
      if (lstatSync(cur).isSymbolicLink()) {
        throw new SymlinkOnPathError(cur);
      }
    }
  }
  return dest;
}

function isDanglingLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
