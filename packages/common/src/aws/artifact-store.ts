/**
 * ArtifactStore on S3: one bucket, optional key prefix. Objects are encrypted by the bucket's
 * default encryption (or as `sse` says); large files go up in parts (lib-storage `Upload`).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  type S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { GqError } from '../errors.js';
import { checkDeletePrefix, checkKey, MAX_KEY_BYTES } from '../artifact-keys.js';
import { ArtifactKeyError, ArtifactNotFoundError } from '../port-errors.js';
import type { ArtifactStore } from '../ports.js';

export interface S3ArtifactStoreOptions {
  bucket: string;
  /** Prepended to every key ("" by default); a trailing "/" is added when missing. */
  prefix?: string;
  /**
   * Server-side encryption requested per object. Default 'bucket': none is named, so the bucket's
   * default encryption applies (gq's stack: SSE-KMS with its own key; naming AES256 here would
   * quietly downgrade that to SSE-S3).
   */
  sse?: ServerSideEncryption | 'bucket';
  /** Multipart part size in bytes (≥ 5 MiB). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded at once per file. Default 4. */
  queueSize?: number;
}


function isNotFound(err: unknown): boolean {
  if (err instanceof NoSuchKey || err instanceof NotFound) return true;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

const MIB = 1024 * 1024;
const MAX_PARTS = 10_000;

/**
 * The part size of a multipart upload of `size` bytes: at most 10,000 parts of 5 MiB or more
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html), so parts grow for files
 * over 10,000 × `partSize` (78 GiB at the default 8 MiB).
 */
export function partSizeFor(size: number, partSize: number): number {
  return Math.max(5 * MIB, partSize, Math.ceil(size / MAX_PARTS));
}

export class S3ArtifactStore implements ArtifactStore {
  readonly bucket: string;
  readonly prefix: string;
  private readonly sse: ServerSideEncryption | undefined;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(
    private readonly s3: S3Client,
    opts: S3ArtifactStoreOptions,
  ) {
    this.bucket = opts.bucket;
    const p = opts.prefix ?? '';
    this.prefix = p === '' || p.endsWith('/') ? p : `${p}/`;
    this.sse = opts.sse === undefined || opts.sse === 'bucket' ? undefined : opts.sse;
    this.partSize = Math.max(5 * MIB, opts.partSize ?? 8 * MIB);
    this.queueSize = Math.max(1, opts.queueSize ?? 4);
  }

  /** The S3 key of an artifact key (checked like the local backend checks it). */
  private key(key: string, opts: { prefix?: boolean } = {}): string {
    checkKey(key, opts);
    // The store's prefix counts too: S3 keys are at most 1024 bytes of UTF-8 (see checkKey).
    if (this.prefix && Buffer.byteLength(this.prefix + key, 'utf8') > MAX_KEY_BYTES) {
      throw new ArtifactKeyError(key, `longer than ${MAX_KEY_BYTES} bytes of UTF-8 with the store prefix`);
    }
    return this.prefix + key;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async putFile(key: string, file: string, onProgress?: (bytesSent: number) => void): Promise<void> {
    const { size } = await stat(file);
    if (size < this.partSize) {
      // One request; the body is a stream of known length.
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(key),
          Body: onProgress ? counted(createReadStream(file), onProgress) : createReadStream(file),
          ContentLength: size,
          ServerSideEncryption: this.sse,
        }),
      );
      return;
    }
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: this.key(key), Body: createReadStream(file), ServerSideEncryption: this.sse },
      partSize: partSizeFor(size, this.partSize),
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    if (onProgress) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && onProgress(p.loaded));
    await upload.done();
  }

  async putBytes(key: string, body: Uint8Array | string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: body, ServerSideEncryption: this.sse }),
    );
  }

  private async get(key: string, range?: string) {
    try {
      return await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key), Range: range }));
    } catch (err) {
      if (isNotFound(err)) throw new ArtifactNotFoundError(key);
      throw err;
    }
  }

  /** Streams to a temporary file next to `file`, then renames it (no half-written file is ever seen). */
  async getFile(key: string, file: string): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const out = await this.get(key);
    const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.part`);
    try {
      await pipeline(out.Body as Readable, createWriteStream(tmp));
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    const out = await this.get(key);
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  /**
   * A suffix range (`bytes=-N`, RFC 9110 §14.1.2): S3 returns the last N bytes, or the whole
   * object when it is shorter (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
   * "Range"). An empty object has no range to satisfy (416 InvalidRange): its tail is empty.
   */
  async getTail(key: string, maxBytes: number): Promise<Buffer> {
    const n = Math.max(1, Math.floor(maxBytes));
    try {
      const out = await this.get(key, `bytes=-${n}`);
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'InvalidRange' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return Buffer.alloc(0);
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key(prefix, { prefix: true }), ContinuationToken: token }),
      );
      for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key.slice(this.prefix.length));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkDeletePrefix(prefix);
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const out = await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: chunk.map((k) => ({ Key: this.prefix + k })), Quiet: true },
        }),
      );
      const errors = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (errors.length > 0) {
        const e = errors[0]!;
        throw new GqError(`could not delete ${errors.length} object(s) under ${prefix}: ${e.Key}: ${e.Code}`);
      }
    }
  }
}

/** `body` passed through, telling `onBytes` how many bytes have gone by (a progress bar's upload). */
function counted(body: Readable, onBytes: (n: number) => void): Readable {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      onBytes(n);
      done(null, chunk);
    },
  });
  body.on('error', (e) => t.destroy(e));
  return body.pipe(t);
}
