/** Every S3 rule: fires on a request that breaks it, not on a valid one. */
import { describe, expect, it } from 'vitest';
import { MIN_PART_BYTES, S3_RULES as R, S3Uploads, validateCompleteMultipart, validateS3, type S3Request } from '../src/s3.js';

const put = (key: string, headers: S3Request['headers'] = {}, query = ''): S3Request => ({
  method: 'PUT',
  url: `/bucket/${key.split('/').map(encodeURIComponent).join('/')}${query}`,
  headers: { 'content-length': '10', ...headers },
});
const complete = (parts: number[]) =>
  `<CompleteMultipartUpload>${parts.map((p) => `<Part><ETag>"e"</ETag><PartNumber>${p}</PartNumber></Part>`).join('')}</CompleteMultipartUpload>`;

describe('S3 rules', () => {
  it('s3.key-too-long: over 1024 bytes of UTF-8 (not characters)', () => {
    expect(validateS3(put(`jobs/${'é'.repeat(510)}`))?.rule.id).toBe(R.keyTooLong.id);
    expect(validateS3(put(`jobs/${'é'.repeat(509)}`))).toBeUndefined();
    expect(validateS3({ method: 'GET', url: `/bucket/${'a'.repeat(1025)}`, headers: {} })?.message).toBe('Your key is too long');
  });

  it('s3.part-number: 1..10000', () => {
    expect(validateS3(put('k', {}, '?partNumber=10001&uploadId=u'))?.rule.id).toBe(R.partNumber.id);
    expect(validateS3(put('k', {}, '?partNumber=0&uploadId=u'))?.rule.id).toBe(R.partNumber.id);
    expect(validateS3(put('k', {}, '?partNumber=10000&uploadId=u'))).toBeUndefined();
  });

  it('s3.entity-too-large: over 5 GiB in one PUT (the decoded length of aws-chunked bodies)', () => {
    expect(validateS3(put('k', { 'content-length': String(5 * 1024 ** 3 + 1) }))?.rule.id).toBe(R.entityTooLarge.id);
    expect(validateS3(put('k', { 'content-length': '100', 'x-amz-decoded-content-length': String(5 * 1024 ** 3 + 1) }))?.rule.id).toBe(R.entityTooLarge.id);
    expect(validateS3(put('k', { 'content-length': String(5 * 1024 ** 3) }))).toBeUndefined();
  });

  it('s3.metadata-too-large: x-amz-meta-* keys and values over 2 KB', () => {
    expect(validateS3(put('k', { 'x-amz-meta-a': 'x'.repeat(2048) }))?.rule.id).toBe(R.metadataTooLarge.id);
    expect(validateS3(put('k', { 'x-amz-meta-a': 'x'.repeat(2047) }))).toBeUndefined();
  });

  it('s3.part-too-small: every part but the last at least 5 MiB', () => {
    const u = new S3Uploads();
    u.notePart('u', 1, MIN_PART_BYTES - 1);
    u.notePart('u', 2, 10);
    expect(validateCompleteMultipart('u', complete([1, 2]), u)?.rule.id).toBe(R.partTooSmall.id);
    u.notePart('u', 1, MIN_PART_BYTES);
    expect(validateCompleteMultipart('u', complete([1, 2]), u)).toBeUndefined();
  });

  it('s3.part-order: ascending part numbers', () => {
    const u = new S3Uploads();
    expect(validateCompleteMultipart('u', complete([2, 1]), u)?.rule.id).toBe(R.partOrder.id);
    expect(validateCompleteMultipart('u', complete([1, 2]), u)).toBeUndefined();
  });

  it('every rule cites an AWS page', () => {
    for (const r of Object.values(R)) expect(r.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
  });
});
