/**
 * Path safety, defined once: what a plain path segment is (a job name or instance id used as a
 * file name), what is wrong with a "/"-separated relative key, and whether a path stays inside a
 * folder. Callers word their own errors; the rules are these.
 */
import { relative, sep } from 'node:path';

/** Non-empty, not "." or "..", and no "/", "\" or NUL: usable as one file name. */
export const isPlainSegment = (v: string): boolean => v !== '' && v !== '.' && v !== '..' && !/[/\\\0]/.test(v);

/** What can make a "/"-separated key unsafe to turn into a path. */
export type KeyProblem = 'nul' | 'backslash' | 'absolute' | 'drive-letter' | 'empty-segment' | 'dot-segment' | 'dotdot-segment';

/**
 * Every problem of `key` as a relative "/"-separated path (none: it is safe to join under a
 * folder). `prefix`: a trailing "/" is allowed (a prefix of keys, not a key).
 */
export function keyProblems(key: string, o: { prefix?: boolean } = {}): Set<KeyProblem> {
  const found = new Set<KeyProblem>();
  if (key.includes('\0')) found.add('nul');
  if (key.includes('\\')) found.add('backslash');
  if (key.startsWith('/')) found.add('absolute');
  if (/^[A-Za-z]:/.test(key)) found.add('drive-letter');
  const segments = key.split('/');
  if (o.prefix && key.endsWith('/')) segments.pop();
  for (const s of segments) {
    if (s === '') found.add('empty-segment');
    else if (s === '.') found.add('dot-segment');
    else if (s === '..') found.add('dotdot-segment');
  }
  return found;
}

/** `key` when it is a plain relative path (no problem at all), else undefined. */
export const plainRelativeKey = (key: string): string | undefined => (keyProblems(key).size === 0 ? key : undefined);

/** Whether `path` lies strictly inside `root` (both absolute or both relative to the same place). */
export function isInside(root: string, path: string): boolean {
  const r = relative(root, path);
  return r !== '' && !r.startsWith('..') && !r.startsWith(sep);
}
