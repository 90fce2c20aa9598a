/** A finished attempt's output keys: within S3's key length and a size the task's item can hold. */
import { describe, expect, it } from 'vitest';
import { MAX_OUTPUT_KEYS_BYTES, outputKeysFor, OutputsRefusedError } from '../src/uploads.js';

describe('outputKeysFor', () => {
  it('keys every file under the task’s files/ prefix', () => {
    expect(outputKeysFor('j', 7, ['out/a.csv', 'log.txt'])).toEqual(['jobs/j/tasks/7/files/out/a.csv', 'jobs/j/tasks/7/files/log.txt']);
  });

  it('refuses, before any upload, a file whose key would pass 1024 bytes', () => {
    const deep = `out/${'d'.repeat(200)}/${'é'.repeat(400)}.csv`;
    expect(() => outputKeysFor('j', 7, ['out/ok.csv', deep])).toThrow(OutputsRefusedError);
    expect(() => outputKeysFor('j', 7, ['out/ok.csv', deep])).toThrow(/S3 allows 1024/);
  });

  it('refuses more output names than the task’s record can hold, saying to pack them', () => {
    const name = (i: number) => `out/${String(i).padStart(6, '0')}-${'x'.repeat(40)}.csv`;
    const per = Buffer.byteLength(outputKeysFor('j', 7, [name(0)])[0]!);
    const fits = Math.floor(MAX_OUTPUT_KEYS_BYTES / per);
    expect(outputKeysFor('j', 7, Array.from({ length: fits }, (_, i) => name(i)))).toHaveLength(fits);
    expect(() => outputKeysFor('j', 7, Array.from({ length: fits + 1 }, (_, i) => name(i)))).toThrow(/pack them into one archive/);
  });
});
