/**
 * moto for one test file: never real AWS.
 *
 *   describeAws('...', () => {                        // skipped, and reported, without moto
 *     let moto: Moto;
 *     beforeAll(async () => { moto = (await startMoto())!; await createSharedResources(moto.endpoint); });
 *     afterAll(async () => { await moto?.stop(); });
 *   });
 *
 * - AWS_ENDPOINT_URL set: that server is used as it is (e.g. one moto for a whole CI run), never
 *   stopped here; an amazonaws.com endpoint is refused. A plain moto_server lacks the fidelity
 *   fixes below, so the race tests may fail against it.
 * - else `moto_server` on PATH: started on a free port, behind the fidelity wrapper below; killed
 *   on stop(), on process exit, and even when this process dies by SIGKILL (a shell in between
 *   reads our stdin and kills moto at EOF).
 * - else a Docker engine that answers: moto in a container (moto-container.ts), same wrapper,
 *   same strict layer.
 * - else undefined: `describeAws` registers the file's tests as skipped and the skip reporter
 *   prints one line for the file; CI (GQ_REQUIRE_AWS_TESTS=1) fails the run in global-setup.
 *
 * In every case the SDK gets dummy credentials and us-east-1 through the environment, and no
 * profile or config file of the developer is read.
 * Also here: `resetMoto` (POST /moto-api/reset), `motoClients`, `createSharedResources` (the
 * table and the bucket as infra/gq.yaml makes them).
 */
// Plain JavaScript shared with bench/moto.mjs (no types needed: only called here).
import { frontWithStrictLayer, launchMoto, REGION, refuseRealAws, setSdkEnv } from './moto-server.mjs';
import {
  CreateBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutPublicAccessBlockCommand,
} from '@aws-sdk/client-s3';
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { describe } from 'vitest';
import { motoAvailable, motoSource, NO_MOTO_MARK } from './moto-source.js';
import { makeAwsClients, type AwsClientOptions, type AwsClients } from '../../packages/common/src/aws/clients.js';

export interface Moto {
  endpoint: string;
  /** True when this process started the server. */
  owned: boolean;
  stop(): Promise<void>;
}

/**
 * moto, made faithful where gq depends on it (each difference checked against AWS's documented
 * behaviour; see the report of the AWS backend):
 *
 * 1. DynamoDB requests are serialised. moto's DynamoDB is not safe under concurrent requests: a
 *    transaction deep-copies the tables it touches and restores that copy when it fails, wiping
 *    writes made meanwhile by other requests, and a conditional write checks and writes without a
 *    lock. Real DynamoDB is atomic per item and per transaction. Every other service stays
 *    concurrent (SQS long polls must not block sends).
 * 2. SQS stale receipt handles (the message was received again since): moto accepts them for
 *    ChangeMessageVisibility and changes the new delivery's timeout. SQS refuses with
 *    InvalidParameterValue "Message does not exist or is not available for visibility timeout
 *    change". (A stale DeleteMessage is left as moto does it: SQS documents that such a delete
 *    succeeds and "might not" delete the message, so moto deleting it is within that.)
 *
 * 3. Speed only, same semantics: a moto transaction deep-copies each table it touches once per
 *    item of the transaction (100 copies of the whole table for a 100-item transaction, minutes
 *    for a few thousand tasks); the copies are identical, so the first is reused. Safe because
 *    DynamoDB requests are serialised (1).
 *
 * If moto's internals change, a patch that cannot be applied says so on stderr and moto runs
 * without it. The wrapper is moto_faithful.py; moto-server.mjs starts it (shared with bench/).
 */
let warnedUnlocked = false;

async function launch(): Promise<Moto | undefined> {
  const m = await launchMoto();
  if (m && !m.faithful && !warnedUnlocked) {
    warnedUnlocked = true;
    console.warn('moto: no Python that imports moto found; running plain moto_server (DynamoDB not serialised, stale SQS receipts accepted: some tests may fail)');
  }
  return m && { endpoint: m.endpoint, owned: true, stop: m.stop };
}

export { HOW_TO_GET_MOTO, motoAvailable, motoSource, NO_MOTO_MARK, type MotoSource } from './moto-source.js';

/** A moto for this test file, or undefined when none can be had (the file's tests are skipped). */
export async function startMoto(): Promise<Moto | undefined> {
  const source = motoSource();
  if (source === 'endpoint') {
    const external = process.env.AWS_ENDPOINT_URL!;
    refuseRealAws(external, "gq's tests");
    setSdkEnv();
    // Behind the strict layer like a moto of our own (the server itself is never stopped here).
    const layer = await frontWithStrictLayer(external.replace(/\/$/, ''));
    return { endpoint: layer.endpoint, owned: false, stop: layer.stop };
  }
  if (source === 'docker') {
    setSdkEnv();
    const { startMotoContainer } = await import('./moto-container.js');
    return startMotoContainer();
  }
  if (source !== 'moto_server') return undefined;
  setSdkEnv();
  // A port taken between freePort and moto's bind: try again on another.
  for (let i = 0; i < 3; i++) {
    const m = await launch();
    if (m) return m;
  }
  throw new Error('moto_server is installed but did not start (set GQ_MOTO_LOG=/tmp/moto.log to see why)');
}

/**
 * `describe` for tests that need moto. Without moto the suite is registered as skipped, with
 * NO_MOTO_MARK in its name, and the skip reporter prints one line for the file at the end of the
 * run (vitest never runs the hooks of a file whose tests are all skipped, so a warning there
 * would never show). CI sets GQ_REQUIRE_AWS_TESTS=1, and global-setup then fails the run instead.
 */
export function describeAws(name: string, fn: () => void): void {
  if (motoAvailable()) describe(name, fn);
  else describe.skip(`${name} ${NO_MOTO_MARK}`, fn);
}


/** Forget everything moto holds (POST /moto-api/reset). */
export async function resetMoto(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
  await res.arrayBuffer();
}

/** Clients for moto (dummy credentials, us-east-1). */
export function motoClients(endpoint: string, middleware?: AwsClientOptions['middleware']): AwsClients {
  return makeAwsClients({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 3,
    middleware,
  });
}

export interface SharedResources {
  bucket: string;
  table: string;
}

/**
 * The shared resources as the CloudFormation stack (infra/gq.yaml) makes them: the status table
 * (pk S / sk S, on demand, encrypted, TTL on `expiresAt`) and the artifact bucket (public access
 * blocked, SSE-KMS by default, bucket owner enforced, incomplete uploads aborted). Idempotent.
 */
export async function createSharedResources(
  endpoint: string,
  names: Partial<SharedResources> = {},
  /** failedIndex false: a table as an older gq stack made it, without the index of FAILED tasks. */
  opts: { failedIndex?: boolean } = {},
): Promise<SharedResources> {
  const bucket = names.bucket ?? 'gq-test-artifacts';
  const table = names.table ?? 'gq-test-status';
  const c = motoClients(endpoint);
  try {
    try {
      await c.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((err as Error).name)) throw err;
    }
    await c.s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: bucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      }),
    );
    // The stack names its own KMS key; moto's S3 takes the AWS managed one just as well.
    await c.s3.send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' }, BucketKeyEnabled: true }],
        },
      }),
    );
    await c.s3.send(
      new PutBucketOwnershipControlsCommand({
        Bucket: bucket,
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      }),
    );
    await c.s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'abort-incomplete-multipart-uploads',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            },
          ],
        },
      }),
    );
    let created = false;
    try {
      await c.dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
            ...(opts.failedIndex === false ? [] : [{ AttributeName: 'fpk', AttributeType: 'S' as const }, { AttributeName: 'fsk', AttributeType: 'N' as const }]),
          ],
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          // As infra/gq.yaml: the sparse index of FAILED tasks (status-store/items.ts FAILED_INDEX).
          ...(opts.failedIndex === false
            ? {}
            : {
                GlobalSecondaryIndexes: [
                  {
                    IndexName: 'failed',
                    KeySchema: [
                      { AttributeName: 'fpk', KeyType: 'HASH' as const },
                      { AttributeName: 'fsk', KeyType: 'RANGE' as const },
                    ],
                    Projection: { ProjectionType: 'ALL' as const },
                  },
                ],
              }),
          SSESpecification: { Enabled: true },
        }),
      );
      created = true;
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    for (let i = 0; i < 50; i++) {
      const t = await c.dynamodb.send(new DescribeTableCommand({ TableName: table }));
      if (t.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (created) {
      await c.dynamodb.send(
        new UpdateTimeToLiveCommand({ TableName: table, TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } }),
      );
    }
  } finally {
    c.destroy();
  }
  return { bucket, table };
}
