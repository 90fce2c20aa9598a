/** S3ArtifactStore on moto: put/get/list/exists/delete, multipart, encryption, prefixes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetBucketEncryptionCommand, GetPublicAccessBlockCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createCallCounter, makeAwsClients, type AwsClients } from '../../src/aws/clients.js';
import { S3ArtifactStore } from '../../src/aws/artifact-store.js';
import {
  describeAws, createSharedResources,
  motoClients,
  startMoto,
  type Moto,
} from '../../../../test/support/moto.js';


describeAws('S3ArtifactStore (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let bucket: string;
  let store: S3ArtifactStore;
  let dir: string;
  const counter = createCallCounter();

  beforeAll(async () => {
    moto = (await startMoto())!;
    ({ bucket } = await createSharedResources(moto.endpoint));
    clients = motoClients(moto.endpoint, counter.install);
    store = new S3ArtifactStore(clients.s3, { bucket });
    dir = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'gq-s3-'));
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the bucket is made like the stack makes it', async () => {
    const enc = await clients.s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    expect(enc.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm).toBe('aws:kms');
    const pab = await clients.s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }));
    expect(pab.PublicAccessBlockConfiguration).toMatchObject({ BlockPublicAcls: true, RestrictPublicBuckets: true });
  });

  it('putBytes / getBytes / exists, encrypted by the bucket default; a missing key is ArtifactNotFoundError', async () => {
    await store.putBytes('jobs/a/install.sh', '#!/bin/sh\necho hi\n');
    await store.putBytes('jobs/a/bin', new Uint8Array([0, 1, 2, 255]));
    expect((await store.getBytes('jobs/a/install.sh')).toString()).toBe('#!/bin/sh\necho hi\n');
    expect([...(await store.getBytes('jobs/a/bin'))]).toEqual([0, 1, 2, 255]);
    expect(await store.exists('jobs/a/install.sh')).toBe(true);
    expect(await store.exists('jobs/a/nope')).toBe(false);
    expect(await store.exists('jobs/a')).toBe(false); // a "folder" is not an artifact
    // Encrypted by the bucket's default (SSE-KMS), not downgraded by a per-object AES256.
    const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'jobs/a/install.sh' }));
    expect(head.ServerSideEncryption).toBe('aws:kms');
    const explicit = new S3ArtifactStore(clients.s3, { bucket, sse: 'AES256' });
    await explicit.putBytes('jobs/a/explicit', 'x');
    expect((await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'jobs/a/explicit' }))).ServerSideEncryption).toBe('AES256');
    await expect(store.getBytes('jobs/a/nope')).rejects.toMatchObject({ name: 'ArtifactNotFoundError' });
    await expect(store.getFile('jobs/a/nope', join(dir, 'x', 'nope'))).rejects.toMatchObject({ name: 'ArtifactNotFoundError' });
    expect(readdirSync(join(dir, 'x'))).toEqual([]); // no temporary left behind
    await expect(store.putBytes('../escape', 'x')).rejects.toMatchObject({ name: 'ArtifactKeyError' });
  });

  it('a 12 MB file goes up in parts and comes back identical (getFile makes folders, no temp left)', async () => {
    const src = join(dir, 'big.bin');
    const data = randomBytes(12 * 1024 * 1024);
    writeFileSync(src, data);
    counter.reset();
    await store.putFile('bundles/big.tar.gz', src);
    const c = counter.counts();
    expect(c['S3.CreateMultipartUpload']).toBe(1);
    expect(c['S3.UploadPart']).toBe(2); // 8 MiB parts
    expect(c['S3.CompleteMultipartUpload']).toBe(1);
    const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'bundles/big.tar.gz' }));
    expect(head.ContentLength).toBe(data.length);
    expect(head.ServerSideEncryption).toBe('aws:kms');

    const out = join(dir, 'deep', 'er', 'big.bin');
    await store.getFile('bundles/big.tar.gz', out);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(readFileSync(out))).toBe(sha(data));
    expect(readdirSync(join(dir, 'deep', 'er'))).toEqual(['big.bin']);

    // A small file is one PutObject.
    writeFileSync(join(dir, 'small.txt'), 'small');
    counter.reset();
    await store.putFile('jobs/a/small.txt', join(dir, 'small.txt'));
    expect(counter.counts()).toEqual({ 'S3.PutObject': 1 });
    await store.getFile('jobs/a/small.txt', out); // replaces the file
    expect(readFileSync(out, 'utf8')).toBe('small');
  });

  it('putFile reports the bytes sent (a progress bar), in one request and in parts, and the object is whole', async () => {
    for (const size of [300 * 1024, 11 * 1024 * 1024]) {
      const src = join(dir, `progress-${size}`);
      const data = randomBytes(size);
      writeFileSync(src, data);
      const heard: number[] = [];
      await new S3ArtifactStore(clients.s3, { bucket, partSize: 5 * 1024 * 1024 }).putFile(`jobs/p/${size}`, src, (n) => heard.push(n));
      expect(heard.length, `size ${size}`).toBeGreaterThan(0);
      expect(heard.at(-1)).toBe(size);
      expect(heard).toEqual([...heard].sort((x, y) => x - y));
      expect(createHash('sha256').update(await store.getBytes(`jobs/p/${size}`)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('list is sorted, paginated and by plain prefix; deletePrefix removes > 1,000 keys', async () => {
    const keys = Array.from({ length: 1010 }, (_, i) => `jobs/many/tasks/${i + 1}/log.txt`);
    // Bounded parallel puts (the store has no bulk put).
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.putBytes(k, 'x')));
    await store.putBytes('jobs/many-other/x', 'y');
    counter.reset();
    const listed = await store.list('jobs/many/');
    expect(counter.counts()['S3.ListObjectsV2']).toBe(2); // 1,000 a page
    expect(listed).toEqual([...keys].sort());
    expect(await store.list('jobs/many/tasks/10')).toEqual(
      [...keys].filter((k) => k.startsWith('jobs/many/tasks/10')).sort(),
    );
    expect(await store.list('jobs/many')).toHaveLength(1011);
    expect(await store.list('nothing/')).toEqual([]);

    counter.reset();
    await store.deletePrefix('jobs/many/');
    expect(counter.counts()['S3.DeleteObjects']).toBe(2);
    expect(await store.list('jobs/many/')).toEqual([]);
    expect(await store.list('jobs/many-other/')).toEqual(['jobs/many-other/x']);
    await expect(store.deletePrefix('')).rejects.toThrow(/non-empty/);
  });

  it('clients built from the environment alone honour AWS_ENDPOINT_URL (path-style S3 then)', async () => {
    const saved = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
    const fromEnv = makeAwsClients({ region: 'us-east-1' });
    try {
      const s = new S3ArtifactStore(fromEnv.s3, { bucket });
      await s.putBytes('jobs/env/x', 'from env');
      expect((await store.getBytes('jobs/env/x')).toString()).toBe('from env');
      expect(await fromEnv.s3.config.forcePathStyle).toBe(true);
    } finally {
      fromEnv.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
      else process.env.AWS_ENDPOINT_URL = saved;
    }
  });

  it('a key prefix keeps stores apart and is invisible to callers', async () => {
    const a = new S3ArtifactStore(clients.s3, { bucket, prefix: 'tenant-a' });
    const b = new S3ArtifactStore(clients.s3, { bucket, prefix: 'tenant-b/' });
    await a.putBytes('jobs/j/k', 'A');
    await b.putBytes('jobs/j/k', 'B');
    expect((await a.getBytes('jobs/j/k')).toString()).toBe('A');
    expect(await a.list('jobs/')).toEqual(['jobs/j/k']);
    expect(await store.exists('tenant-a/jobs/j/k')).toBe(true);
    await a.deletePrefix('jobs/');
    expect(await a.exists('jobs/j/k')).toBe(false);
    expect(await b.exists('jobs/j/k')).toBe(true);
  });
});
