/**
 * The strict layer: an HTTP proxy in front of moto (or any AWS-compatible endpoint) that answers
 * every request AWS documents as invalid with AWS's own error, and forwards everything else as it
 * came (method, path, headers with Host as signed, body; the answer streamed back).
 *
 *   const layer = await startStrictLayer({ upstream: 'http://127.0.0.1:5000' });
 *   layer.endpoint        // http://127.0.0.1:<port>: point the SDK here
 *   layer.rejections      // what was refused (rule id, operation, code, message)
 *   await layer.stop();
 *
 * Which service a request is for: the SigV4 credential scope (`Credential=KEY/DATE/REGION/
 * <service>/aws4_request`), else `X-Amz-Target`, else `/moto-api/` (moto's own API: forwarded),
 * else S3 (path-style). Only what a rule needs is buffered: JSON bodies of DynamoDB and SQS, form
 * bodies of Auto Scaling and EC2, and the small XML body of CompleteMultipartUpload; S3 objects
 * and parts stream through. Some rules need state the request does not carry: DynamoDB key
 * schemas (learnt from CreateTable, else one DescribeTable to the upstream per table), the sizes
 * of a group for SetDesiredCapacity / UpdateAutoScalingGroup (DescribeAutoScalingGroups to the
 * upstream), and the part sizes of multipart uploads (noted from the UploadPart requests).
 * `POST /moto-api/reset` forgets all of it.
 *
 * Contention (off by default; `contention` option, or GQ_CONTENTION_WINDOW_MS / GQ_ITEM_WRITES_PER_S
 * through `contentionFromEnv`): valid DynamoDB writes are also put to the model of contention.ts,
 * which answers transaction conflicts and hot-item throttling as DynamoDB does.
 */
import { appendFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { NEEDS_GROUP, validateAutoScaling, type GroupSizes } from './autoscaling.js';
import { tablesOf, validateDynamoDB } from './dynamodb.js';
import { validateEc2 } from './ec2.js';
import { ContentionModel, type ContentionHold, type ContentionOptions, type ContentionStats } from './contention.js';
import { errorResponse } from './errors.js';
import type { Rejection, Service, Violation } from './rules.js';
import { parseS3, S3Uploads, validateCompleteMultipart, validateS3 } from './s3.js';
import { validateSqs } from './sqs.js';

export interface StrictLayerOptions {
  /** Where valid requests go, e.g. moto's http://127.0.0.1:5000. */
  upstream: string;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default: a free one). */
  port?: number;
  /** Append each rejection to this file as one JSON line (e.g. to collect them over a test run). */
  log?: string;
  /** DynamoDB contention emulation (contention.ts); off when absent. */
  contention?: ContentionOptions;
}

export interface StrictLayer {
  /** http://<host>:<port> */
  readonly endpoint: string;
  /** Every refused request, oldest first. */
  readonly rejections: Rejection[];
  /** What the contention emulation refused (all zero when it is off). */
  readonly contention: ContentionStats;
  stop(): Promise<void>;
}

type Headers = IncomingHttpHeaders;

function credential(h: Headers, url: string): { service?: string; region?: string } {
  let cred = typeof h.authorization === 'string' ? /Credential=([^,\s]+)/.exec(h.authorization)?.[1] : undefined;
  if (!cred) {
    const q = url.indexOf('?');
    if (q >= 0) cred = new URLSearchParams(url.slice(q + 1)).get('X-Amz-Credential') ?? undefined;
  }
  const parts = cred?.split('/') ?? [];
  return parts.length >= 5 ? { region: parts[2], service: parts[3] } : {};
}

function serviceOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  if (url.startsWith('/moto-api')) return 'moto';
  const { service } = credential(req.headers, url);
  if (service) return service;
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target.startsWith('AmazonSQS.')) return 'sqs';
  if (target.startsWith('DynamoDB_')) return 'dynamodb';
  return 's3';
}

const operationOf = (h: Headers): string => String(h['x-amz-target'] ?? '').split('.')[1] ?? '';

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Headers for the upstream: as received, minus hop-by-hop ones (and Expect: answered here already). */
function forwardHeaders(h: Headers, body?: Buffer): Headers {
  const out: Headers = { ...h };
  delete out.connection;
  delete out['keep-alive'];
  delete out.expect;
  if (body) {
    delete out['transfer-encoding'];
    out['content-length'] = String(body.length);
  }
  return out;
}

export async function startStrictLayer(opts: StrictLayerOptions): Promise<StrictLayer> {
  const upstream = new URL(opts.upstream);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 1000, noDelay: true });
  const rejections: Rejection[] = [];
  const keySchemas = new Map<string, readonly string[]>();
  const uploads = new S3Uploads();
  const model = new ContentionModel(opts.contention);

  /** One request to the upstream, answered in memory (the layer's own look-ups). */
  function ask(method: string, headers: Headers, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const r = httpRequest(
        { host: upstream.hostname, port: upstream.port, method, path: '/', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  }

  const signed = (h: Headers): Headers => {
    const out: Record<string, string | string[]> = {};
    for (const k of ['authorization', 'x-amz-date', 'x-amz-security-token', 'host']) {
      const v = h[k];
      if (v !== undefined) out[k] = v;
    }
    return out;
  };

  async function keyAttributes(region: string, table: string, h: Headers): Promise<void> {
    const id = `${region}/${table}`;
    if (keySchemas.has(id)) return;
    const res = await ask('POST', { ...signed(h), 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.DescribeTable' }, JSON.stringify({ TableName: table }));
    if (res.status !== 200) return;
    const schema = (JSON.parse(res.body) as { Table?: { KeySchema?: Array<{ AttributeName: string }> } }).Table?.KeySchema;
    if (schema) keySchemas.set(id, schema.map((k) => k.AttributeName));
  }

  async function groupSizes(name: string, h: Headers): Promise<GroupSizes | undefined> {
    const body = new URLSearchParams({ Action: 'DescribeAutoScalingGroups', Version: '2011-01-01', 'AutoScalingGroupNames.member.1': name }).toString();
    const res = await ask('POST', { ...signed(h), 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body);
    const num = (tag: string) => Number(new RegExp(`<${tag}>(\\d+)</${tag}>`).exec(res.body)?.[1]);
    if (res.status !== 200 || !res.body.includes('<AutoScalingGroupName>')) return undefined;
    const g = { min: num('MinSize'), max: num('MaxSize'), desired: num('DesiredCapacity') };
    return Number.isFinite(g.max) && Number.isFinite(g.min) ? g : undefined;
  }

  /** The violation of a buffered request, if any. */
  async function check(service: string, req: IncomingMessage, body: Buffer): Promise<{ v?: Violation; operation: string }> {
    const h = req.headers;
    const region = credential(h, req.url ?? '/').region ?? 'us-east-1';
    if (service === 'dynamodb' || service === 'sqs') {
      const operation = operationOf(h);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return { operation };
      }
      if (service === 'sqs') return { v: validateSqs(operation, parsed), operation };
      if (operation === 'CreateTable') {
        const schema = parsed.KeySchema as Array<{ AttributeName: string }> | undefined;
        if (typeof parsed.TableName === 'string' && schema) keySchemas.set(`${region}/${parsed.TableName}`, schema.map((k) => k.AttributeName));
      } else if (operation === 'DeleteTable' && typeof parsed.TableName === 'string') {
        keySchemas.delete(`${region}/${parsed.TableName}`);
      }
      for (const t of tablesOf(operation, parsed)) await keyAttributes(region, t, h).catch(() => undefined);
      return { v: validateDynamoDB(operation, parsed, { keyAttributes: (t) => keySchemas.get(`${region}/${t}`) }), operation };
    }
    const p = new URLSearchParams(body.toString('utf8'));
    const operation = p.get('Action') ?? '';
    if (service === 'ec2') return { v: validateEc2(p), operation };
    let group: GroupSizes | undefined;
    const name = p.get('AutoScalingGroupName');
    if (NEEDS_GROUP.has(operation) && name) group = await groupSizes(name, h).catch(() => undefined);
    return { v: validateAutoScaling(p, { group: () => group }), operation };
  }

  function refuse(res: ServerResponse, service: string, operation: string, v: Violation): void {
    const r: Rejection = {
      rule: v.rule.id,
      service: service as Service,
      operation,
      status: v.rule.status,
      code: v.rule.code,
      message: v.message,
      at: new Date().toISOString(),
    };
    rejections.push(r);
    if (opts.log) {
      try {
        appendFileSync(opts.log, `${JSON.stringify(r)}\n`);
      } catch {
        // The log is a convenience; the rejection itself stands.
      }
    }
    const e = errorResponse(v);
    res.writeHead(e.status, { ...e.headers, 'content-length': String(Buffer.byteLength(e.body)) });
    res.end(e.body);
  }

  /**
   * Forward to the upstream and stream its answer back. With a contention `hold` (a transaction),
   * the answer is held back until the hold's window has passed.
   */
  function forward(req: IncomingMessage, res: ServerResponse, body?: Buffer, hold?: ContentionHold): void {
    const up = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: forwardHeaders(req.headers, body), agent },
      (answer) => {
        // Hop-by-hop: moto's werkzeug closes every connection; ours to the client stays open.
        const { connection: _c, 'keep-alive': _k, ...headers } = answer.headers;
        const send = () => {
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        };
        const wait = hold ? hold.until - Date.now() : 0;
        if (wait > 0) setTimeout(send, wait);
        else send();
      },
    );
    up.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`strict-aws: upstream ${opts.upstream} failed: ${err.message}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (body) up.end(body);
    else req.pipe(up);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const service = serviceOf(req);
    const url = req.url ?? '/';
    if (service === 'moto') {
      if (url.startsWith('/moto-api/reset')) keySchemas.clear();
      forward(req, res);
      return;
    }
    const form = String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    if (service === 'dynamodb' || service === 'sqs' || ((service === 'autoscaling' || service === 'ec2') && form)) {
      const body = await readBody(req);
      const { v, operation } = await check(service, req, body);
      if (v) {
        refuse(res, service, operation, v);
        return;
      }
      if (service === 'dynamodb' && model.enabled) {
        const region = credential(req.headers, url).region ?? 'us-east-1';
        let parsed: Record<string, unknown> | undefined;
        try {
          parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          parsed = undefined;
        }
        const verdict = parsed && model.check(operation, parsed, (t) => keySchemas.get(`${region}/${t}`));
        if (verdict?.answer) {
          const a = verdict.answer;
          res.writeHead(a.status, { ...a.headers, 'content-length': String(Buffer.byteLength(a.body)) });
          res.end(a.body);
          return;
        }
        if (verdict?.hold) {
          forward(req, res, body, verdict.hold);
          return;
        }
      }
      forward(req, res, body);
      return;
    }
    if (service === 's3') {
      const s3req = { method: req.method ?? 'GET', url, headers: req.headers };
      const parsed = parseS3(s3req);
      const v = validateS3(s3req, parsed);
      if (v) {
        req.resume();
        refuse(res, service, parsed.operation, v);
        return;
      }
      const uploadId = parsed.query.get('uploadId');
      if (parsed.operation === 'UploadPart' && uploadId && parsed.bytes !== undefined) {
        uploads.notePart(uploadId, Number(parsed.query.get('partNumber')), parsed.bytes);
      } else if (parsed.operation === 'AbortMultipartUpload' && uploadId) {
        uploads.forget(uploadId);
      } else if (parsed.operation === 'CompleteMultipartUpload' && uploadId) {
        const body = await readBody(req);
        const c = validateCompleteMultipart(uploadId, body.toString('utf8'), uploads);
        if (c) refuse(res, service, parsed.operation, c);
        else forward(req, res, body);
        return;
      }
    }
    forward(req, res);
  }

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`strict-aws: ${(err as Error).message}`);
      } else res.destroy();
    });
  });
  // Long polls (20 s) and large uploads: no request timeout; idle keep-alive longer than the SDK's.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s) => {
    // Small answers (DynamoDB, SQS) must not wait for Nagle's algorithm and delayed ACKs.
    s.setNoDelay(true);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host}:${port}`,
    rejections,
    contention: model.stats,
    async stop() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
