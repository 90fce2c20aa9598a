/** What the agent waits out and tries again (retry.ts isTransient), and what it throws at once. */
import { NETWORK_ERROR_CODES } from '@gq/common';
import { describe, expect, it } from 'vitest';
import { isTransient } from '../src/retry.js';

const withCode = (code: string) => Object.assign(new Error(code), { code });
const named = (name: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(name), { name, ...extra });

describe('isTransient', () => {
  it('every network code (common/src/network-errors.ts) and a busy SQLite file are waited out', () => {
    for (const code of [...NETWORK_ERROR_CODES, 'SQLITE_BUSY', 'SQLITE_LOCKED']) expect(isTransient(withCode(code)), code).toBe(true);
  });

  it('throttling, 5xx and 429 answers, and a network error found in a cause or an AggregateError', () => {
    expect(isTransient(named('ThrottlingException'))).toBe(true);
    expect(isTransient(named('Whatever', { $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isTransient(named('Whatever', { $metadata: { httpStatusCode: 429 } }))).toBe(true);
    expect(isTransient(new Error('wrapped', { cause: withCode('ECONNRESET') }))).toBe(true);
    expect(isTransient(new AggregateError([new Error('x'), withCode('ETIMEDOUT')]))).toBe(true);
  });

  it('anything else is thrown at once: access denied, a missing queue, a 4xx, an abort, a bug', () => {
    expect(isTransient(named('AccessDeniedException', { $metadata: { httpStatusCode: 400 } }))).toBe(false);
    expect(isTransient(named('QueueDoesNotExist'))).toBe(false);
    expect(isTransient(named('AbortError', { code: 'ECONNRESET' }))).toBe(false);
    expect(isTransient(withCode('ENOENT'))).toBe(false);
    expect(isTransient(new TypeError('x is not a function'))).toBe(false);
    expect(isTransient(undefined)).toBe(false);
  });
});
