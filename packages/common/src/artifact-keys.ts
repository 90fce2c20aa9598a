/**
 * The rule for artifact keys, the same on both backends: relative "/"-separated paths that cannot
 * escape the local artifacts folder and that S3 accepts as object keys.
 */
import { ArtifactKeyError } from './port-errors.js';
import { keyProblems, type KeyProblem } from './safe-path.js';

/** S3's limit, in bytes of UTF-8 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html). */
export const MAX_KEY_BYTES = 1024;

/** Check one key; throws ArtifactKeyError. `prefix` allows "" and a trailing "/". */
export function checkKey(key: string, opts: { prefix?: boolean } = {}): void {
  if (typeof key !== 'string') throw new ArtifactKeyError(String(key), 'not a string');
  if (key === '') {
    if (opts.prefix) return;
    throw new ArtifactKeyError(key, 'empty');
  }
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new ArtifactKeyError(key, `longer than ${MAX_KEY_BYTES} bytes of UTF-8`);
  // The path rules are safe-path.ts's (the same as for downloads and logs); the reasons, these.
  const problems = keyProblems(key, opts);
  for (const [p, why] of REASONS) if (problems.has(p)) throw new ArtifactKeyError(key, why);
}

const REASONS: ReadonlyArray<[KeyProblem, string]> = [
  ['backslash', 'contains a backslash'],
  ['nul', 'contains a NUL character'],
  ['absolute', 'absolute'],
  ['drive-letter', 'has a drive letter'],
  ['empty-segment', 'has an empty segment'],
  ['dot-segment', 'has a "." segment'],
  ['dotdot-segment', 'has a ".." segment'],
];

/** Check the prefix of a deletePrefix: a key prefix, and not "" (that would empty the whole store: never what a caller means). */
export function checkDeletePrefix(prefix: string): void {
  if (prefix === '') throw new ArtifactKeyError(prefix, 'deletePrefix needs a non-empty prefix');
  checkKey(prefix, { prefix: true });
}
