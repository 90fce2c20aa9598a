/**
 * The AWS backend: SQS queues, a DynamoDB status table, an S3 bucket and EC2 Auto Scaling groups.
 * The table and the bucket are shared by every job (created by the CloudFormation stack); queues,
 * groups and launch templates are per job.
 */
import type { Backend } from '../ports.js';
import { makeAwsClients, type AwsClientOptions, type AwsClients } from './clients.js';
import { DynamoStatusStore, type DynamoStatusStoreOptions } from './status-store/index.js';
import { AsgFleet, type LaunchSpec } from './fleet.js';
import { S3ArtifactStore } from './artifact-store.js';
import { DynamoSecretStore } from './secrets.js';
import { SqsQueueProvider, type SqsQueueProviderOptions } from './task-queue.js';
import type { JobRecord } from '../job/model.js';
import type { Pool } from '../job/on-demand.js';

export * from './clients.js';
export * from './call-log.js';
export * from './names.js';
export * from './scaling.js';
export * from './task-queue.js';
export * from './task-queue-common.js';
export * from './status-store/index.js';
export * from './artifact-store.js';
export * from './fleet.js';
export * from './fleet-view.js';
export * from './fleet-health.js';
export * from './launch-failures.js';
export * from './secrets.js';

export interface AwsBackendOptions {
  region: string;
  bucket: string;
  table: string;
  /** Key prefix inside the bucket. */
  prefix?: string;
  /** Endpoint override (moto); otherwise the SDK's own resolution (AWS_ENDPOINT_URL honoured). */
  endpoint?: string;
  profile?: string;
  credentials?: AwsClientOptions['credentials'];
  middleware?: AwsClientOptions['middleware'];
  /** Ready-made clients (then endpoint/profile/credentials/middleware are not used). */
  clients?: AwsClients;
  /** Whether close() destroys the clients. Default: only when this function made them. */
  ownsClients?: boolean;
  launchSpec?: (job: JobRecord, instanceType: string, pool: Pool) => Promise<LaunchSpec>;
  queue?: SqsQueueProviderOptions;
  status?: Omit<DynamoStatusStoreOptions, 'table'>;
}

export interface AwsBackend extends Backend {
  readonly name: 'aws';
  readonly clients: AwsClients;
  readonly queues: SqsQueueProvider;
  readonly status: DynamoStatusStore;
  readonly artifacts: S3ArtifactStore;
  readonly fleet: AsgFleet;
  readonly secrets: DynamoSecretStore;
}

export function openAwsBackend(opts: AwsBackendOptions): AwsBackend {
  const owned = opts.ownsClients ?? !opts.clients;
  const clients =
    opts.clients ??
    makeAwsClients({
      region: opts.region,
      endpoint: opts.endpoint,
      profile: opts.profile,
      credentials: opts.credentials,
      middleware: opts.middleware,
    });
  return {
    name: 'aws',
    clients,
    queues: new SqsQueueProvider(clients.sqs, opts.queue),
    status: new DynamoStatusStore(clients.ddb, { ...opts.status, table: opts.table }),
    artifacts: new S3ArtifactStore(clients.s3, { bucket: opts.bucket, prefix: opts.prefix }),
    fleet: new AsgFleet({ autoscaling: clients.autoscaling, ec2: clients.ec2, launchSpec: opts.launchSpec }),
    secrets: new DynamoSecretStore(clients.ddb, { table: opts.table }),
    async close() {
      if (owned) clients.destroy();
    },
  };
}
