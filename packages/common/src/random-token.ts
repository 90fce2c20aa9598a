/**
 * Random tokens (receipt handles, run ids: a few for every task a local worker runs) cut from a
 * pool of random bytes refilled 4 KiB at a time: one call into the system's generator for a few
 * hundred tokens instead of one each. The bytes are the same crypto-quality bytes.
 */
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let at = 0;

/** `bytes` random bytes, as hex or base64url text. */
export function randomToken(bytes: number, encoding: 'hex' | 'base64url'): string {
  if (at + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes));
    at = 0;
  }
  const text = pool.toString(encoding, at, at + bytes);
  at += bytes;
  return text;
}
