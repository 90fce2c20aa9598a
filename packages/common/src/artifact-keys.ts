/**
 * The rule for artifact keys, the same on both backends: relative "/"-separated paths that cannot
 * escape the local artifacts folder and that S3 accepts as object keys.
 */
import { ArtifactKeyError } from './port-errors.js';

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
  if (key.includes('\\')) throw new ArtifactKeyError(key, 'contains a backslash');
  if (key.includes('\0')) throw new ArtifactKeyError(key, 'contains a NUL character');
  if (key.startsWith('/')) throw new ArtifactKeyError(key, 'absolute');
  if (/^[A-Za-z]:/.test(key)) throw new ArtifactKeyError(key, 'has a drive letter');
  const segments = key.split('/');
  if (opts.prefix && key.endsWith('/')) segments.pop();
  for (const s of segments) {
    if (s === '') throw new ArtifactKeyError(key, 'has an empty segment');
    if (s === '.' || s === '..') throw new ArtifactKeyError(key, `has a "${s}" segment`);
  }
}

/** Check the prefix of a deletePrefix: a key prefix, and not "" (that would empty the whole store: never what a caller means). */
export function checkDeletePrefix(prefix: string): void {
  if (prefix === '') throw new ArtifactKeyError(prefix, 'deletePrefix needs a non-empty prefix');
  checkKey(prefix, { prefix: true });
}
