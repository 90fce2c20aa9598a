/**
 * A fault-injecting HTTP proxy in front of moto, for the network-fault tests:
 *
 *   const proxy = await startFaultProxy(moto.endpoint);   // http://127.0.0.1:<free port>
 *   ... point the CLI and the instances at proxy.url ...
 *   await proxy.down();            // the endpoint goes away (see "down" below)
 *   await proxy.up();              // back, on the SAME port
 *   proxy.throttle({ fraction: 0.2, services: ['sqs', 'dynamodb'] });
 *   proxy.throttle(undefined);     // stop throttling
 *   proxy.stats()                  // what it saw, refused and throttled, per service and client
 *   await proxy.close();
 *
 * Forwarding: every request is passed on as it is — method, path and query, headers (Host
 * included, as the client signed it; moto does not check signatures) and body, streamed both
 * ways, so long polls and large uploads behave as they do against moto.
 *
 * Which service a request is for: the SigV4 credential scope the client signed it with
 * (`Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/<service>/aws4_request`, or the
 * `X-Amz-Credential` query parameter of a presigned URL). Every SDK request and gq's UserData
 * bootstrap are signed this way, so this one rule covers SQS, DynamoDB, S3, Auto Scaling, EC2, STS
 * and CloudFormation. Unsigned requests fall back to `X-Amz-Target` (`AmazonSQS.*` → sqs,
 * `DynamoDB_*` → dynamodb), `/moto-api/` → moto, anything else → s3 (path-style object URLs).
 * The client is the access key id of that scope: each test instance has its own (its IMDS
 * emulator makes one), the CLI and the harness use `testing`.
 *
 * down(): by default ('reset') the proxy keeps its port but every connection made while it is
 * down is counted and dropped at once — connections open at that moment are destroyed, and a new
 * one is reset as soon as its request head has arrived (so it can be attributed to a service and
 * a client). The client sees ECONNRESET / "socket hang up" immediately, a failure as fast as a
 * refused connection, which is what matters when looking for a hot loop. With `{ mode: 'close' }`
 * the listening socket is closed instead, so clients get a real ECONNREFUSED; nothing can be
 * counted then (`refused` stays as it was), and up() listens again on the same port.
 *
 * throttle(): a fraction of the requests of the named services (default sqs and dynamodb) is
 * answered with that service's own throttling error instead of being forwarded — the request
 * never reaches moto, so a retry is always safe, as with real throttling:
 *   sqs       HTTP 400, JSON protocol (what @aws-sdk/client-sqs v3 speaks: AWS JSON 1.0 with
 *             awsQueryCompatible): headers `x-amzn-query-error: RequestThrottled;Sender` and
 *             `x-amzn-errortype`, body `{"__type":"com.amazonaws.sqs#RequestThrottled","message":...}`
 *             — the shape moto 5 gives its own SQS errors, and the code the SDK's SQS model
 *             knows (RequestThrottled, which the SDK classes as throttling); an SQS query
 *             protocol request (form body) gets the XML ErrorResponse with Code RequestThrottled.
 *   dynamodb  HTTP 400 `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}`
 *             or `...#ThrottlingException` (alternately; both are real DynamoDB answers).
 *   s3        HTTP 503 `<Error><Code>SlowDown</Code>...` (S3's request-rate answer).
 *   autoscaling  HTTP 400 query-protocol XML, Code `Throttling`.
 *   ec2       HTTP 503 EC2 XML, Code `RequestLimitExceeded`.
 * The choice is pseudo-random from a seed (default 1), so a run is reproducible request for
 * request given the same order of requests.
 *
 * delay(): requests of the named services and/or operations are held this long before they are
 * forwarded (to widen a window, e.g. `gq submit`'s enqueue: `{ ms: 1000, operations:
 * ['SendMessageBatch'] }`). A request whose client went away meanwhile is not forwarded.
 * Operations are known for the JSON protocols only (SQS, DynamoDB: the `X-Amz-Target` header);
 * `stats().operations` counts the forwarded requests by "service.Operation".
 *
 * answer(): answers that moto cannot give, in AWS's own shape. For requests of the named
 * services the proxy reads the whole body first (query-protocol services such as Auto Scaling and
 * EC2 name the operation and its parameters there: `Action=DescribeScalingActivities&...`), hands
 * the request to the rule, and sends the rule's answer instead of moto's, or forwards the request
 * unchanged when the rule returns undefined. `stats().answered` counts them by service.
 * queryParams() parses such a body; scalingActivitiesXml() and consoleOutputXml() build the
 * documented responses (see each).
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Service = 'sqs' | 'dynamodb' | 's3' | 'autoscaling' | 'ec2' | 'sts' | 'cloudformation' | 'moto' | (string & {});

export interface ThrottleOptions {
  /** Share of matching requests answered with a throttling error, 0..1. */
  fraction: number;
  /** Services to throttle (default ['sqs', 'dynamodb']). */
  services?: readonly Service[];
  /** Seed of the pseudo-random choice (default 1). */
  seed?: number;
  /** Throttle at most this many requests, then forward everything again (default: no limit). */
  limit?: number;
}

export interface FaultProxyStats {
  /** Requests whose head arrived, by service (forwarded, throttled or refused). */
  seen: Record<string, number>;
  /** Requests passed on to moto, by service. */
  forwarded: Record<string, number>;
  /** Requests dropped because the proxy was down, by service ('reset' mode only). */
  refused: Record<string, number>;
  /** The same, by client (access key id). */
  refusedByClient: Record<string, number>;
  /** Connections accepted while down and dropped (a connection may carry no request yet). */
  refusedConnections: number;
  /** Requests answered with a throttling error, by service. */
  throttled: Record<string, number>;
  /** The same, by client (access key id). */
  throttledByClient: Record<string, number>;
  /** Requests that failed on the way to moto (answered 502), by service. */
  upstreamErrors: Record<string, number>;
  /** Forwarded requests by "service.Operation" (JSON-protocol services only). */
  operations: Record<string, number>;
  /** Requests answered by an answer() rule, by service. */
  answered: Record<string, number>;
}

export interface DelayOptions {
  ms: number;
  /** Services whose requests are held (default: any, if `operations` is given; else every service). */
  services?: readonly Service[];
  /** Operations (X-Amz-Target's part after the dot, e.g. SendMessageBatch) whose requests are held. */
  operations?: readonly string[];
}

/** A request as answer() rules see it. */
export interface AnsweredRequest {
  service: Service;
  /** Access key id of the signature (each test instance has its own; the CLI uses `testing`). */
  client: string;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** An answer for the client, in place of moto's. */
export interface CannedAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface AnswerRule {
  /** Services whose requests are read whole and handed to `answer` (others pass untouched). */
  services: readonly Service[];
  answer(req: AnsweredRequest): CannedAnswer | undefined;
}

export interface FaultProxy {
  /** http://127.0.0.1:<port>, stable across down()/up(). */
  readonly url: string;
  readonly port: number;
  readonly isDown: boolean;
  /** Where requests go (when the proxy must exist before moto does, e.g. startAwsHarness's endpoint()). */
  setUpstream(url: string): void;
  down(opts?: { mode?: 'reset' | 'close' }): Promise<void>;
  up(): Promise<void>;
  throttle(opts: ThrottleOptions | undefined): void;
  delay(opts: DelayOptions | undefined): void;
  /** Answer some requests instead of moto (undefined: stop). */
  answer(rule: AnswerRule | undefined): void;
  /** A copy of the counters. */
  stats(): FaultProxyStats;
  resetStats(): void;
  close(): Promise<void>;
}

/** `Credential=KEY/DATE/REGION/SERVICE/aws4_request` → { key, service }. */
function credentialScope(req: IncomingMessage): { key?: string; service?: string } {
  const auth = req.headers.authorization;
  let cred: string | undefined;
  if (typeof auth === 'string') cred = /Credential=([^,\s]+)/.exec(auth)?.[1];
  if (!cred) {
    const q = req.url?.indexOf('?') ?? -1;
    if (q >= 0) cred = new URLSearchParams(req.url!.slice(q + 1)).get('X-Amz-Credential') ?? undefined;
  }
  if (!cred) return {};
  const parts = cred.split('/');
  return { key: parts[0], service: parts.length >= 5 ? parts[3] : undefined };
}

export function serviceOf(req: IncomingMessage): { service: Service; client: string } {
  const { key, service } = credentialScope(req);
  const client = key ?? 'unsigned';
  if (service) return { service, client };
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target.startsWith('AmazonSQS.')) return { service: 'sqs', client };
  if (target.startsWith('DynamoDB_')) return { service: 'dynamodb', client };
  if (req.url?.startsWith('/moto-api')) return { service: 'moto', client };
  return { service: 's3', client };
}

/** mulberry32: small, seeded, good enough to pick which requests to throttle. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Canned {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The service's own throttling answer (see the header of this file). */
function throttlingAnswer(service: Service, req: IncomingMessage, n: number): Canned | undefined {
  const requestId = randomUUID();
  const xmlQuery = (code: string, status: number): Canned => ({
    status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body:
      `<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code>` +
      `<Message>Rate exceeded</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  });
  switch (service) {
    case 'sqs': {
      const json = String(req.headers['content-type'] ?? '').includes('json');
      if (!json) return xmlQuery('RequestThrottled', 400);
      return {
        status: 400,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-requestid': requestId,
          'x-amzn-query-error': 'RequestThrottled;Sender',
          'x-amzn-errortype': 'com.amazonaws.sqs#RequestThrottled',
        },
        body: JSON.stringify({ __type: 'com.amazonaws.sqs#RequestThrottled', message: 'Rate exceeded' }),
      };
    }
    case 'dynamodb': {
      const type = n % 2 === 0 ? 'ProvisionedThroughputExceededException' : 'ThrottlingException';
      return {
        status: 400,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId },
        body: JSON.stringify({
          __type: `com.amazonaws.dynamodb.v20120810#${type}`,
          message: type === 'ThrottlingException' ? 'Rate of requests exceeds the allowed throughput.' : 'The level of configured provisioned throughput for the table was exceeded.',
        }),
      };
    }
    case 's3':
      return {
        status: 503,
        headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId },
        body:
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>` +
          `<Message>Please reduce your request rate.</Message><RequestId>${requestId}</RequestId></Error>`,
      };
    case 'autoscaling':
      return xmlQuery('Throttling', 400);
    case 'ec2':
      return {
        status: 503,
        headers: { 'content-type': 'text/xml' },
        body:
          `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>` +
          `<Message>Request limit exceeded.</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
      };
    default:
      return undefined;
  }
}

const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

function emptyStats(): FaultProxyStats {
  return {
    seen: {},
    forwarded: {},
    refused: {},
    refusedByClient: {},
    refusedConnections: 0,
    throttled: {},
    throttledByClient: {},
    upstreamErrors: {},
    operations: {},
    answered: {},
  };
}

/** The parameters of a query-protocol body (Auto Scaling, EC2): `Action=...&InstanceId=...`. */
export function queryParams(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}

const xmlEscape = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One scaling activity of DescribeScalingActivities (the API's Activity type). */
export interface ActivityXml {
  ActivityId: string;
  AutoScalingGroupName: string;
  Description: string;
  Cause: string;
  StartTime: Date;
  EndTime?: Date;
  StatusCode: 'Successful' | 'Failed' | 'Cancelled' | 'InProgress';
  StatusMessage?: string;
  Progress: number;
  Details?: string;
}

/**
 * A DescribeScalingActivities answer as the Auto Scaling query API sends it: the
 * DescribeScalingActivitiesResponse / DescribeScalingActivitiesResult / Activities / member
 * elements, with a ResponseMetadata RequestId
 * (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html,
 * "Examples"; Activity fields from API_Activity.html).
 */
export function scalingActivitiesXml(activities: readonly ActivityXml[]): CannedAnswer {
  const el = (k: string, v: string | number | Date | undefined) =>
    v === undefined ? '' : `<${k}>${xmlEscape(v instanceof Date ? v.toISOString() : String(v))}</${k}>`;
  const members = activities
    .map(
      (a) =>
        `<member>${el('ActivityId', a.ActivityId)}${el('AutoScalingGroupName', a.AutoScalingGroupName)}${el('Description', a.Description)}` +
        `${el('Cause', a.Cause)}${el('StartTime', a.StartTime)}${el('EndTime', a.EndTime)}${el('StatusCode', a.StatusCode)}` +
        `${el('StatusMessage', a.StatusMessage)}${el('Progress', a.Progress)}${el('Details', a.Details)}</member>`,
    )
    .join('');
  return {
    status: 200,
    headers: { 'content-type': 'text/xml' },
    body:
      `<?xml version="1.0" encoding="UTF-8"?><DescribeScalingActivitiesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">` +
      `<DescribeScalingActivitiesResult><Activities>${members}</Activities></DescribeScalingActivitiesResult>` +
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>`,
  };
}

/**
 * A GetConsoleOutput answer as EC2 sends it: instanceId, timestamp and the base64 output
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html, "Examples").
 */
export function consoleOutputXml(instanceId: string, output: string): CannedAnswer {
  return {
    status: 200,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body:
      `<?xml version="1.0" encoding="UTF-8"?><GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
      `<requestId>${randomUUID()}</requestId><instanceId>${xmlEscape(instanceId)}</instanceId>` +
      `<timestamp>${new Date().toISOString()}</timestamp><output>${Buffer.from(output, 'utf8').toString('base64')}</output></GetConsoleOutputResponse>`,
  };
}

/** An error answer in the service's own protocol (S3 XML, DynamoDB JSON 1.0, query-protocol XML). */
export function serviceError(service: Service, status: number, code: string, message: string): CannedAnswer {
  const requestId = randomUUID();
  if (service === 'dynamodb') {
    return {
      status,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId },
      body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, message }),
    };
  }
  if (service === 's3') {
    return {
      status,
      headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId },
      body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>${requestId}</RequestId></Error>`,
    };
  }
  return {
    status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body:
      `<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code>` +
      `<Message>${xmlEscape(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  };
}

/** The operation of a JSON-protocol request (`X-Amz-Target: AmazonSQS.SendMessageBatch`), else ''. */
function operationOf(req: IncomingMessage): string {
  const target = String(req.headers['x-amz-target'] ?? '');
  const dot = target.lastIndexOf('.');
  return dot >= 0 ? target.slice(dot + 1) : '';
}

export async function startFaultProxy(upstream?: string): Promise<FaultProxy> {
  let target: URL | undefined = upstream ? new URL(upstream) : undefined;
  const upstreamAgent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const sockets = new Set<Socket>();
  const inflight = new Set<ClientRequest>();
  let stats = emptyStats();
  let downMode: 'reset' | 'close' | undefined;
  let throttling: { fraction: number; services: Set<string>; next: () => number; left: number } | undefined;
  let port = 0;
  let delaying: DelayOptions | undefined;
  let answering: AnswerRule | undefined;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const { service, client } = serviceOf(req);
    bump(stats.seen, service);
    if (downMode) {
      bump(stats.refused, service);
      bump(stats.refusedByClient, client);
      req.socket.destroy();
      return;
    }
    if (throttling && throttling.left > 0 && throttling.services.has(service) && throttling.next() < throttling.fraction) {
      const answer = throttlingAnswer(service, req, stats.throttled[service] ?? 0);
      if (answer) {
        throttling.left--;
        bump(stats.throttled, service);
        bump(stats.throttledByClient, client);
        // Read (and drop) the body first, as a server does before it answers.
        req.resume();
        req.on('end', () => {
          res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
          res.end(answer.body);
        });
        return;
      }
    }
    const rule = answering;
    if (rule && rule.services.includes(service)) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let canned: CannedAnswer | undefined;
        try {
          canned = rule.answer({ service, client, method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: body.toString('utf8') });
        } catch (e) {
          canned = { status: 500, headers: { 'content-type': 'text/plain' }, body: `fault proxy: answer rule failed: ${(e as Error).message}` };
        }
        if (!canned) return forward(req, res, service, operationOf(req), body);
        bump(stats.answered, service);
        res.writeHead(canned.status, { ...canned.headers, 'content-length': String(Buffer.byteLength(canned.body)) });
        res.end(canned.body);
      });
      return;
    }
    const operation = operationOf(req);
    const d = delaying;
    if (
      d &&
      (!d.services || d.services.includes(service)) &&
      (!d.operations || d.operations.includes(operation))
    ) {
      req.pause();
      setTimeout(() => {
        if (req.socket.destroyed || res.destroyed) return; // the client gave up meanwhile
        forward(req, res, service, operation);
      }, d.ms);
      return;
    }
    forward(req, res, service, operation);
  };

  /** `body`: the request's body when it was read already (answer rules); else it is streamed. */
  const forward = (req: IncomingMessage, res: ServerResponse, service: string, operation: string, body?: Buffer) => {
    if (!target) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('fault proxy: no upstream set');
      return;
    }
    if (downMode) {
      req.socket.destroy();
      return;
    }
    bump(stats.forwarded, service);
    if (operation) bump(stats.operations, `${service}.${operation}`);
    const up = httpRequest(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: upstreamAgent,
      },
      (ures) => {
        inflight.delete(up);
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, ures.rawHeaders);
        ures.pipe(res);
        ures.on('error', () => res.destroy());
      },
    );
    inflight.add(up);
    up.on('error', (e) => {
      inflight.delete(up);
      bump(stats.upstreamErrors, service);
      if (res.headersSent) res.destroy();
      else if (!res.destroyed) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`fault proxy: upstream error: ${e.message}`);
      }
    });
    // The client went away (or down() destroyed its socket): stop the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (body) up.end(body);
    else req.pipe(up);
  };

  const server: Server = createServer({ keepAlive: true }, handle);
  server.on('connection', (s: Socket) => {
    if (downMode) {
      stats.refusedConnections++;
      // Reset as soon as the request head is read (handle); a client that sends nothing is dropped too.
      setTimeout(() => downMode && s.destroy(), 1000).unref();
    }
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s) => s.destroy());

  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(p, '127.0.0.1', () => {
        server.off('error', onError);
        resolve();
      });
    });

  await listen(0);
  port = (server.address() as AddressInfo).port;

  const dropAll = () => {
    for (const s of sockets) s.destroy();
    for (const r of inflight) r.destroy();
    inflight.clear();
  };

  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get isDown() {
      return downMode !== undefined;
    },
    setUpstream(url) {
      target = new URL(url);
    },
    async down(opts = {}) {
      if (downMode) return;
      downMode = opts.mode ?? 'reset';
      if (downMode === 'close') {
        const closed = new Promise<void>((r) => server.close(() => r()));
        dropAll();
        await closed;
      } else {
        dropAll();
      }
    },
    async up() {
      if (!downMode) return;
      const was = downMode;
      downMode = undefined;
      if (was === 'close') {
        // Same port; something else may have bound it meanwhile (unlikely on 127.0.0.1): retry briefly.
        for (let i = 0; ; i++) {
          try {
            await listen(port);
            break;
          } catch (e) {
            if (i >= 50) throw e;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    },
    delay(opts) {
      delaying = opts;
    },
    answer(rule) {
      answering = rule;
    },
    throttle(opts) {
      throttling = opts
        ? {
            fraction: opts.fraction,
            services: new Set(opts.services ?? ['sqs', 'dynamodb']),
            next: rng(opts.seed ?? 1),
            left: opts.limit ?? Infinity,
          }
        : undefined;
    },
    stats: () => structuredClone(stats),
    resetStats() {
      stats = emptyStats();
    },
    async close() {
      downMode = 'close';
      const closed = server.listening ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
      dropAll();
      await closed;
      upstreamAgent.destroy();
    },
  };
}
