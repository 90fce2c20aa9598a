/**
 * The AWS SDK clients of one backend, built once with the same settings: the standard credential
 * chain (env, profile, SSO, instance role...), adaptive retries done by the SDK itself (no retry
 * loops of our own around SDK calls), keep-alive connections and sane timeouts.
 *
 * Region, profile, credentials and AWS_ENDPOINT_URL(_<SERVICE>) are honoured by the SDK itself when
 * not given here; `endpoint` overrides them all (tests point it at moto).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, MiddlewareStack } from '@smithy/types';
import { installCallLog } from './call-log.js';

/** Anything with a middleware stack (every SDK v3 client). */
export interface ClientWithMiddleware {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  middlewareStack: MiddlewareStack<any, any>;
}

/** Installs middleware on one client (e.g. a call counter). Called once per client. */
export type MiddlewareInstaller = (client: ClientWithMiddleware, service: string) => void;

export interface AwsClientOptions {
  /** Region; when absent the SDK resolves it (AWS_REGION, profile). */
  region?: string;
  /** Endpoint override for every service (moto, LocalStack). */
  endpoint?: string;
  /** Named profile of ~/.aws/config (otherwise AWS_PROFILE / default). */
  profile?: string;
  /** Explicit credentials; otherwise the standard provider chain. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Attempts per call, the first included (SDK retries; adaptive mode). Default 8. */
  maxAttempts?: number;
  /** Extra middleware for each client, e.g. `createCallCounter().install`. */
  middleware?: MiddlewareInstaller | readonly MiddlewareInstaller[];
}

export interface AwsClients {
  sqs: SQSClient;
  /** Raw DynamoDB client (table administration). */
  dynamodb: DynamoDBClient;
  /** Document client (native JS values; undefined values removed). */
  ddb: DynamoDBDocumentClient;
  s3: S3Client;
  autoscaling: AutoScalingClient;
  ec2: EC2Client;
  sts: STSClient;
  /** Close every connection. */
  destroy(): void;
}

const DEFAULT_MAX_ATTEMPTS = 8;

/** One handler per client (destroying a client destroys its handler and agents). */
function httpHandler(): NodeHttpHandler {
  const agentOptions = { keepAlive: true, maxSockets: 64, keepAliveMsecs: 1000 };
  return new NodeHttpHandler({
    connectionTimeout: 5_000,
    // Idle socket limit; must exceed the SQS long poll (20 s), during which nothing is received.
    socketTimeout: 65_000,
    httpAgent: new HttpAgent(agentOptions),
    httpsAgent: new HttpsAgent(agentOptions),
  });
}

/** Largest stream body read into memory so that the SDK can retry its request (see below). */
const MAX_BUFFERED_BODY = 16 * 1024 * 1024;

/**
 * The SDK never retries a request whose body is a stream ("An error was encountered in a
 * non-retryable streaming request"): it cannot send the stream twice. One reset connection or
 * one S3 503 SlowDown then failed the upload of a task's results or log, or of a code bundle.
 * So stream bodies of known length up to 16 MiB — every single-request upload of gq's S3 store
 * (larger files go up in multipart parts, which are buffers already) — are read into memory
 * first, and the SDK's retries apply to them as to any other request.
 */
function bufferStreamBodies(client: ClientWithMiddleware): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const input = (args as { input?: { Body?: unknown; ContentLength?: number } }).input;
      const body = input?.Body;
      if (body instanceof Readable && typeof input?.ContentLength === 'number' && input.ContentLength <= MAX_BUFFERED_BODY) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
        // A file still being appended to (a live log) may have grown since its size was taken:
        // send exactly the bytes the request declares, so the stored object matches its checksum.
        const all = Buffer.concat(chunks);
        const bytes = all.subarray(0, Math.min(all.length, input.ContentLength));
        return next({ ...args, input: { ...input, Body: bytes, ContentLength: bytes.length } });
      }
      return next(args);
    },
    { step: 'initialize', name: 'gqBufferStreamBodies', priority: 'high' },
  );
}

/** True when the SDK will talk to a custom endpoint (explicit or AWS_ENDPOINT_URL*). */
function customEndpoint(opts: AwsClientOptions, service: string): boolean {
  return Boolean(opts.endpoint || process.env.AWS_ENDPOINT_URL || process.env[`AWS_ENDPOINT_URL_${service}`]);
}

export function makeAwsClients(opts: AwsClientOptions = {}): AwsClients {
  // The SDK warns on every process start under Node 20; gq supports Node 20 on purpose.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const base = () => ({
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.profile ? { profile: opts.profile } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    retryMode: 'adaptive',
    maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    requestHandler: httpHandler(),
  });

  // Queue URLs returned by a mock may name real AWS hosts: always use the client's endpoint.
  const sqs = new SQSClient({ ...base(), useQueueUrlAsEndpoint: false });
  const dynamodb = new DynamoDBClient(base());
  const ddb = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    unmarshallOptions: { wrapNumbers: false },
  });
  const s3 = new S3Client({
    ...base(),
    // Virtual-host buckets need DNS the mock does not have.
    forcePathStyle: customEndpoint(opts, 'S3'),
  });
  bufferStreamBodies(s3);
  const autoscaling = new AutoScalingClient(base());
  const ec2 = new EC2Client(base());
  const sts = new STSClient(base());

  const installers = opts.middleware === undefined ? [] : Array.isArray(opts.middleware) ? opts.middleware : [opts.middleware];
  const named: Array<[ClientWithMiddleware, string]> = [
    [sqs, 'SQS'],
    [dynamodb, 'DynamoDB'],
    [s3, 'S3'],
    [autoscaling, 'AutoScaling'],
    [ec2, 'EC2'],
    [sts, 'STS'],
  ];
  for (const install of installers as MiddlewareInstaller[]) for (const [c, name] of named) install(c, name);
  // Tests only (GQ_TEST_AWS_CALL_LOG): the policy-coverage test's record of every call.
  for (const [c, name] of named) installCallLog(c, name);

  return {
    sqs,
    dynamodb,
    ddb,
    s3,
    autoscaling,
    ec2,
    sts,
    destroy() {
      // ddb shares dynamodb's handler.
      for (const c of [sqs, dynamodb, s3, autoscaling, ec2, sts]) c.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Call counting (benchmarks: AWS calls per task).

export interface CallCounter {
  /** Pass as `middleware` to makeAwsClients, or call on any SDK client. */
  install: MiddlewareInstaller;
  /** Logical calls (one per `client.send`, whatever its retries) by "Service.Operation". */
  counts(): Record<string, number>;
  /** HTTP requests including SDK retries, by "Service.Operation". */
  requests(): Record<string, number>;
  /** Total logical calls. */
  total(): number;
  reset(): void;
}

const COUNTER_NAME = 'gqCallCounter';

export function createCallCounter(): CallCounter {
  let calls = new Map<string, number>();
  let sent = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const keyOf = (service: string, context: { commandName?: string }) =>
    `${service}.${(context.commandName ?? 'Unknown').replace(/Command$/, '')}`;
  return {
    install(client, service) {
      // Idempotent: a client that already counts (e.g. the document client shares its stack) is skipped.
      const stack = client.middlewareStack as MiddlewareStack<object, object> & { identify?: () => string[] };
      if (stack.identify?.().some((s) => s.startsWith(COUNTER_NAME))) return;
      stack.add(
        (next, context) => async (args) => {
          bump(calls, keyOf(service, context));
          return next(args);
        },
        { step: 'initialize', name: COUNTER_NAME, priority: 'high' },
      );
      stack.add(
        (next, context) => async (args) => {
          bump(sent, keyOf(service, context));
          return next(args);
        },
        // After the retry middleware (finalizeRequest): once per HTTP attempt.
        { step: 'deserialize', name: `${COUNTER_NAME}Requests` },
      );
    },
    counts: () => Object.fromEntries(calls),
    requests: () => Object.fromEntries(sent),
    total: () => [...calls.values()].reduce((a, b) => a + b, 0),
    reset() {
      calls = new Map();
      sent = new Map();
    },
  };
}
