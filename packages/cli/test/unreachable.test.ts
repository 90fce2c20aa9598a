import { UserError } from '@gq/common';
import { describe, expect, it } from 'vitest';
import { unreachable } from '../src/unreachable.js';

const sysError = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`connect ${code}`), { code, ...extra });

describe('AWS out of reach is a user error that says what to check', () => {
  it('a refused connection names where and the endpoint override', () => {
    const u = unreachable(sysError('ECONNREFUSED', { address: '127.0.0.1', port: 4566 }), { AWS_ENDPOINT_URL: 'http://127.0.0.1:4566' });
    expect(u).toBeInstanceOf(UserError);
    expect(u!.message).toBe('Cannot reach AWS at 127.0.0.1:4566 (ECONNREFUSED), even after retries.');
    expect(u!.hint).toMatch(/AWS_ENDPOINT_URL is set \(http:\/\/127\.0\.0\.1:4566\)/);
  });

  it('a name that does not resolve: the host, and the network and proxy to check', () => {
    const u = unreachable(sysError('ENOTFOUND', { hostname: 'sqs.us-east-1.amazonaws.com' }), {});
    expect(u!.message).toBe('Cannot reach AWS at sqs.us-east-1.amazonaws.com (ENOTFOUND), even after retries.');
    expect(u!.hint).toMatch(/network connection and any proxy/);
  });

  it('anything else is left alone: AWS errors, other system errors, user errors, non-errors', () => {
    expect(unreachable(Object.assign(new Error('x'), { name: 'ThrottlingException' }))).toBeUndefined();
    expect(unreachable(sysError('ENOENT'))).toBeUndefined();
    expect(unreachable(new UserError('bad input'))).toBeUndefined();
    expect(unreachable('ECONNREFUSED')).toBeUndefined();
  });
});
