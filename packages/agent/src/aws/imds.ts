/**
 * Folder agent/src/aws: what the agent asks of the EC2 instance it runs on (metadata, its own tags).
 *
 * IMDSv2-only client for the agent: instance identity and Spot interruption notices.
 *
 * Every read carries a session token (PUT /latest/api/token); there is no IMDSv1 fallback, ever.
 * Credentials are deliberately not read here: the AWS SDK's default credential chain reads the
 * instance role from IMDS by itself, and it honours AWS_EC2_METADATA_SERVICE_ENDPOINT exactly as
 * this client does (which is how the test runtime points both at its emulator).
 */
import { backoffDelay } from '@gq/common/backoff';
import { sleep } from '@gq/common/time';

const DEFAULT_ENDPOINT = 'http://169.254.169.254';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';

export interface ImdsOptions {
  /** Base URL; default AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254. */
  endpoint?: string;
  /** Per-request timeout (IMDS is on the host: a slow answer means it is not there). */
  timeoutMs?: number;
  /** Session token lifetime asked for, seconds (1..21600). */
  tokenTtlSeconds?: number;
  /** Attempts per request on network errors, 5xx and 429. */
  attempts?: number;
}

/** A pending Spot interruption: `action` is terminate, stop or hibernate; `time` is ISO UTC. */
export interface SpotInstanceAction {
  action: string;
  time: string;
}

export interface Imds {
  readonly endpoint: string;
  instanceId(): Promise<string>;
  instanceType(): Promise<string>;
  region(): Promise<string>;
  availabilityZone(): Promise<string>;
  /** The Spot interruption notice, or undefined when there is none (404). Never cached. */
  spotInstanceAction(): Promise<SpotInstanceAction | undefined>;
  /** Any metadata path under /latest/ (e.g. "meta-data/ami-id"); undefined on 404. */
  get(path: string): Promise<string | undefined>;
}

export class ImdsError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImdsError';
    this.status = status;
  }
}

const retryable = (e: unknown) =>
  !(e instanceof ImdsError) || e.status === undefined || e.status === 429 || e.status >= 500;

export function createImds(opts: ImdsOptions = {}): Imds {
  const endpoint = (opts.endpoint ?? process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? DEFAULT_ENDPOINT).replace(
    /\/+$/,
    '',
  );
  const timeoutMs = opts.timeoutMs ?? 2000;
  const ttl = Math.min(21600, Math.max(1, Math.floor(opts.tokenTtlSeconds ?? 21600)));
  const attempts = Math.max(1, opts.attempts ?? 3);

  let token: { value: string; expiresAt: number } | undefined;
  let pendingToken: Promise<string> | undefined;
  const cache = new Map<string, Promise<string>>();

  async function request(method: 'GET' | 'PUT', path: string, headers: Record<string, string>): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(endpoint + path, { method, headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      throw new ImdsError(`IMDS ${method} ${path}: ${(cause as Error).message}`, undefined, { cause });
    }
    return res;
  }

  async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (e) {
        if (i >= attempts || !retryable(e)) throw e;
        await sleep(backoffDelay(i, 100, 2000));
      }
    }
  }

  function fetchToken(): Promise<string> {
    pendingToken ??= withRetries(async () => {
      const started = Date.now();
      const res = await request('PUT', '/latest/api/token', { [TTL_HEADER]: String(ttl) });
      const body = await res.text();
      if (!res.ok) throw new ImdsError(`IMDS token request: HTTP ${res.status}`, res.status);
      // Renew a minute early (or at half the lifetime for short tokens).
      token = { value: body.trim(), expiresAt: started + ttl * 1000 - Math.min(60_000, (ttl * 1000) / 2) };
      return token.value;
    }).finally(() => {
      pendingToken = undefined;
    });
    return pendingToken;
  }

  async function currentToken(): Promise<string> {
    if (token && Date.now() < token.expiresAt) return token.value;
    return fetchToken();
  }

  async function get(path: string): Promise<string | undefined> {
    const full = '/latest/' + path.replace(/^\/+/, '').replace(/^latest\//, '');
    return withRetries(async () => {
      for (let fresh = false; ; fresh = true) {
        const res = await request('GET', full, { [TOKEN_HEADER]: await currentToken() });
        const body = await res.text();
        if (res.ok) return body;
        if (res.status === 404) return undefined;
        if (res.status === 401 && !fresh) {
          token = undefined; // expired or revoked: get a new one once
          continue;
        }
        throw new ImdsError(`IMDS GET ${full}: HTTP ${res.status}`, res.status);
      }
    });
  }

  async function required(path: string): Promise<string> {
    const value = await get(path);
    if (value === undefined || value.trim() === '') throw new ImdsError(`IMDS: nothing at /latest/${path}`, 404);
    return value.trim();
  }

  /** Static values never change for the life of an instance: read them once. */
  function once(path: string): Promise<string> {
    let p = cache.get(path);
    if (!p) {
      p = required(path);
      p.catch(() => cache.delete(path));
      cache.set(path, p);
    }
    return p;
  }

  const availabilityZone = () => once('meta-data/placement/availability-zone');

  return {
    endpoint,
    get,
    instanceId: () => once('meta-data/instance-id'),
    instanceType: () => once('meta-data/instance-type'),
    availabilityZone,
    async region() {
      try {
        return await once('meta-data/placement/region');
      } catch (e) {
        if (!(e instanceof ImdsError) || e.status !== 404) throw e;
        return (await availabilityZone()).replace(/[a-z]$/, ''); // us-east-1a → us-east-1
      }
    },
    async spotInstanceAction() {
      const body = await get('meta-data/spot/instance-action');
      if (body === undefined) return undefined;
      try {
        const parsed = JSON.parse(body) as Partial<SpotInstanceAction>;
        if (typeof parsed.action === 'string' && typeof parsed.time === 'string') {
          return { action: parsed.action, time: parsed.time };
        }
      } catch {
        // fall through
      }
      throw new ImdsError(`IMDS: unexpected spot/instance-action ${JSON.stringify(body.slice(0, 200))}`);
    },
  };
}
