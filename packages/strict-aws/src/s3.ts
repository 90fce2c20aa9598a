/**
 * S3 (REST, path-style: `/<bucket>/<key>`). Pure: `validateS3(request, uploads)` checks what the
 * request line and headers show; `validateCompleteMultipart(uploadId, body, uploads)` checks a
 * CompleteMultipartUpload against the part sizes `S3Uploads` noted from the UploadPart requests.
 */
import { defineRules, utf8Bytes, violation, type Violation } from './rules.js';

const GUIDE = 'https://docs.aws.amazon.com/AmazonS3/latest/userguide';

export const S3_RULES = defineRules('s3', {
  keyTooLong: { id: 's3.key-too-long', summary: 'an object key over 1024 bytes of UTF-8', doc: `${GUIDE}/object-keys.html`, status: 400, code: 'KeyTooLongError' },
  partNumber: { id: 's3.part-number', summary: 'a part number outside 1..10000', doc: `${GUIDE}/qfacts.html`, status: 400, code: 'InvalidArgument' },
  partTooSmall: { id: 's3.part-too-small', summary: 'a part other than the last under 5 MiB (at CompleteMultipartUpload)', doc: `${GUIDE}/qfacts.html`, status: 400, code: 'EntityTooSmall' },
  partOrder: { id: 's3.part-order', summary: 'CompleteMultipartUpload parts not in ascending order', doc: 'https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html', status: 400, code: 'InvalidPartOrder' },
  entityTooLarge: { id: 's3.entity-too-large', summary: 'over 5 GiB in one PUT (object or part)', doc: `${GUIDE}/upload-objects.html`, status: 400, code: 'EntityTooLarge' },
  metadataTooLarge: { id: 's3.metadata-too-large', summary: 'user-defined metadata (x-amz-meta-*) over 2 KB', doc: `${GUIDE}/UsingMetadata.html`, status: 400, code: 'MetadataTooLarge' },
});
const R = S3_RULES;

export const MAX_KEY_BYTES = 1024;
export const MAX_PUT_BYTES = 5 * 1024 ** 3;
export const MIN_PART_BYTES = 5 * 1024 ** 2;
export const MAX_PART_NUMBER = 10_000;
export const MAX_METADATA_BYTES = 2 * 1024;

export interface S3Request {
  method: string;
  /** Path and query as sent (`/bucket/key?partNumber=1&uploadId=...`). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Part sizes of the multipart uploads in progress, as the UploadPart requests declared them. */
export class S3Uploads {
  private readonly parts = new Map<string, Map<number, number>>();
  notePart(uploadId: string, part: number, bytes: number): void {
    let m = this.parts.get(uploadId);
    if (!m) this.parts.set(uploadId, (m = new Map()));
    m.set(part, bytes);
  }
  sizes(uploadId: string): ReadonlyMap<number, number> | undefined {
    return this.parts.get(uploadId);
  }
  forget(uploadId: string): void {
    this.parts.delete(uploadId);
  }
}

export interface S3Parsed {
  bucket: string;
  key: string | undefined;
  query: URLSearchParams;
  /** The body size the request declares (decoded length of aws-chunked bodies), if known. */
  bytes: number | undefined;
  operation: string;
}

const header = (h: S3Request['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Bucket, key and S3 operation of a path-style request. */
export function parseS3(req: S3Request): S3Parsed {
  const q = req.url.indexOf('?');
  const path = q >= 0 ? req.url.slice(0, q) : req.url;
  const query = new URLSearchParams(q >= 0 ? req.url.slice(q + 1) : '');
  const slash = path.indexOf('/', 1);
  const bucket = decodeURIComponent(slash < 0 ? path.slice(1) : path.slice(1, slash));
  const rawKey = slash < 0 ? '' : path.slice(slash + 1);
  let key: string | undefined;
  try {
    key = rawKey === '' ? undefined : decodeURIComponent(rawKey);
  } catch {
    key = rawKey;
  }
  const declared = header(req.headers, 'x-amz-decoded-content-length') ?? header(req.headers, 'content-length');
  const bytes = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
  const m = req.method.toUpperCase();
  let operation = `${m} object`;
  if (key === undefined) operation = `${m} bucket`;
  else if (m === 'PUT' && query.has('partNumber') && query.has('uploadId')) operation = 'UploadPart';
  else if (m === 'PUT' && header(req.headers, 'x-amz-copy-source')) operation = 'CopyObject';
  else if (m === 'PUT') operation = 'PutObject';
  else if (m === 'POST' && query.has('uploads')) operation = 'CreateMultipartUpload';
  else if (m === 'POST' && query.has('uploadId')) operation = 'CompleteMultipartUpload';
  else if (m === 'DELETE' && query.has('uploadId')) operation = 'AbortMultipartUpload';
  else if (m === 'GET') operation = 'GetObject';
  else if (m === 'HEAD') operation = 'HeadObject';
  else if (m === 'DELETE') operation = 'DeleteObject';
  return { bucket, key, query, bytes, operation };
}

function metadataBytes(headers: S3Request['headers']): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers)) {
    if (!k.toLowerCase().startsWith('x-amz-meta-') || v === undefined) continue;
    n += utf8Bytes(k.slice('x-amz-meta-'.length)) + utf8Bytes(Array.isArray(v) ? v.join(',') : v);
  }
  return n;
}

/** The first documented refusal visible in an S3 request's line and headers, or undefined. */
export function validateS3(req: S3Request, parsed: S3Parsed = parseS3(req)): Violation | undefined {
  const { key, operation, query, bytes } = parsed;
  if (key === undefined) return undefined;
  if (utf8Bytes(key) > MAX_KEY_BYTES) return violation(R.keyTooLong, 'Your key is too long');
  if (operation === 'UploadPart') {
    const n = Number(query.get('partNumber'));
    if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
      return violation(R.partNumber, `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
    }
  }
  if ((operation === 'PutObject' || operation === 'UploadPart') && bytes !== undefined && bytes > MAX_PUT_BYTES) {
    return violation(R.entityTooLarge, 'Your proposed upload exceeds the maximum allowed size');
  }
  if ((operation === 'PutObject' || operation === 'CreateMultipartUpload' || operation === 'CopyObject') && metadataBytes(req.headers) > MAX_METADATA_BYTES) {
    return violation(R.metadataTooLarge, 'Your metadata headers exceed the maximum allowed metadata size.');
  }
  return undefined;
}

/** The part numbers of a CompleteMultipartUpload body, in the order given. */
export function completedParts(xml: string): number[] {
  return [...xml.matchAll(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/g)].map((m) => Number(m[1]));
}

/** Every part but the last must be at least 5 MiB; parts in ascending order. */
export function validateCompleteMultipart(uploadId: string, xml: string, uploads: S3Uploads): Violation | undefined {
  const parts = completedParts(xml);
  for (let i = 1; i < parts.length; i++) {
    if (parts[i]! <= parts[i - 1]!) return violation(R.partOrder, 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
  }
  const sizes = uploads.sizes(uploadId);
  if (!sizes) return undefined;
  for (const p of parts.slice(0, -1)) {
    const size = sizes.get(p);
    if (size !== undefined && size < MIN_PART_BYTES) {
      return violation(R.partTooSmall, 'Your proposed upload is smaller than the minimum allowed size');
    }
  }
  return undefined;
}
