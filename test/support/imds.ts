/**
 * An EC2 instance metadata service (IMDS) emulator for one test "instance": node:http on
 * 127.0.0.1, a free port, IMDSv2 only. Point AWS_EC2_METADATA_SERVICE_ENDPOINT at `endpoint` and
 * both the AWS SDK (credentials) and gq's own IMDS client (identity, Spot notices) use it.
 *
 * Served, like EC2 does:
 *   PUT /latest/api/token  (X-aws-ec2-metadata-token-ttl-seconds: 1..21600)  → token
 *   GET /latest/meta-data/{instance-id, instance-type, ami-id, local-ipv4, hostname}
 *   GET /latest/meta-data/placement/{region, availability-zone}
 *   GET /latest/meta-data/iam/security-credentials/          → role name
 *   GET /latest/meta-data/iam/security-credentials/<role>    → dummy credentials moto accepts
 *   GET /latest/meta-data/spot/instance-action               → 404 until announceSpotInterruption()
 *   GET /latest/meta-data/instance-life-cycle                → spot or on-demand (option lifecycle)
 *   GET /latest/dynamic/instance-identity/document
 *   GET /latest/user-data                                    → 404 when there is none
 * Any GET without a valid token gets 401 (no IMDSv1).
 *
 * blockUid(uid) emulates an iptables owner match (`-m owner --uid-owner UID -j REJECT` for
 * 169.254.169.254): a connection whose client socket belongs to that uid (read from
 * /proc/net/tcp, Linux) is reset before anything is read, as a rejected SYN would fail.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ImdsEmulatorOptions {
  instanceId: string;
  instanceType: string;
  region: string;
  /** Default `${region}a`. */
  availabilityZone?: string;
  userData?: string;
  /** Instance profile role name. */
  role?: string;
  /** How the instance is bought (instance-life-cycle); default on-demand. */
  lifecycle?: 'spot' | 'on-demand';
  /** Credentials served for the role (default dummy ASIA… values; moto accepts any). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
}

export interface ImdsRequestRecord {
  method: string;
  path: string;
  status: number;
  /** Whether the request carried a token header (valid or not). */
  token: boolean;
}

export interface ImdsEmulator {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  /** Requests served so far, in order. */
  readonly requests: readonly ImdsRequestRecord[];
  /** From now on spot/instance-action answers terminate in two minutes. */
  announceSpotInterruption(): void;
  /** Refuse connections from processes of this uid (see the module comment). */
  blockUid(uid: number): void;
  /** Forget every blocked uid (firewall rules do not survive a reboot). */
  unblockAll(): void;
  /** Connections refused so far by blockUid. */
  readonly refused: number;
  stop(): Promise<void>;
}

const MAX_TTL = 21600;

/** Owner uid of the local TCP socket 127.0.0.1:localPort connected to 127.0.0.1:remotePort (Linux). */
export function socketUid(localPort: number, remotePort: number): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return undefined;
  }
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    if (f[1]!.endsWith(`:${hex(localPort)}`) && f[2]!.endsWith(`:${hex(remotePort)}`)) return Number(f[7]);
  }
  return undefined;
}

function dummyCredentials(): NonNullable<ImdsEmulatorOptions['credentials']> {
  const id = randomBytes(8).toString('hex').toUpperCase();
  return {
    accessKeyId: `ASIA${id}`.slice(0, 20),
    secretAccessKey: randomBytes(30).toString('base64').slice(0, 40),
    sessionToken: `IQoJb3JpZ2luX2VjEImds${randomBytes(24).toString('base64')}`,
  };
}

export async function startImds(opts: ImdsEmulatorOptions): Promise<ImdsEmulator> {
  const zone = opts.availabilityZone ?? `${opts.region}a`;
  const role = opts.role ?? 'gq-instance-role';
  const creds = opts.credentials ?? dummyCredentials();
  const started = new Date();
  const tokens = new Map<string, number>(); // token → expiry (epoch ms)
  const requests: ImdsRequestRecord[] = [];
  let spot: { action: string; time: string } | undefined;

  const metaData: Record<string, () => string> = {
    'instance-id': () => opts.instanceId,
    'instance-type': () => opts.instanceType,
    'instance-life-cycle': () => opts.lifecycle ?? 'on-demand',
    'ami-id': () => 'ami-00000000000000000',
    'local-ipv4': () => '10.0.0.10',
    hostname: () => 'ip-10-0-0-10.ec2.internal',
    'placement/region': () => opts.region,
    'placement/availability-zone': () => zone,
    'iam/info': () =>
      JSON.stringify({
        Code: 'Success',
        LastUpdated: started.toISOString(),
        InstanceProfileArn: `arn:aws:iam::123456789012:instance-profile/${role}`,
        InstanceProfileId: 'AIPAIMDSEMULATOR00000',
      }),
    'iam/security-credentials/': () => role,
    [`iam/security-credentials/${role}`]: () =>
      JSON.stringify({
        Code: 'Success',
        LastUpdated: new Date().toISOString(),
        Type: 'AWS-HMAC',
        AccessKeyId: creds.accessKeyId,
        SecretAccessKey: creds.secretAccessKey,
        Token: creds.sessionToken,
        Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
      }),
  };

  const routes: Record<string, () => string | undefined> = {
    '/latest/meta-data/': () =>
      ['ami-id', 'hostname', 'iam/', 'instance-id', 'instance-life-cycle', 'instance-type', 'local-ipv4', 'placement/', 'spot/'].join('\n'),
    '/latest/meta-data/placement/': () => 'availability-zone\nregion',
    '/latest/meta-data/iam/': () => 'info\nsecurity-credentials/',
    '/latest/meta-data/spot/instance-action': () => (spot ? JSON.stringify(spot) : undefined),
    '/latest/dynamic/instance-identity/document': () =>
      JSON.stringify(
        {
          accountId: '123456789012',
          architecture: process.arch === 'arm64' ? 'arm64' : 'x86_64',
          availabilityZone: zone,
          imageId: 'ami-00000000000000000',
          instanceId: opts.instanceId,
          instanceType: opts.instanceType,
          pendingTime: started.toISOString().replace(/\.\d+Z$/, 'Z'),
          privateIp: '10.0.0.10',
          region: opts.region,
          version: '2017-09-30',
        },
        null,
        2,
      ),
    '/latest/user-data': () => opts.userData,
  };
  for (const [key, value] of Object.entries(metaData)) routes[`/latest/meta-data/${key}`] = value;

  function answer(req: IncomingMessage, res: ServerResponse, status: number, body = ''): void {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ method: req.method ?? '?', path, status, token: req.headers['x-aws-ec2-metadata-token'] !== undefined });
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  const server = createServer((req, res) => {
    // Drain any body, then answer.
    req.resume();
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/latest/api/token') {
        if (req.method !== 'PUT') return answer(req, res, 405);
        // Real IMDS refuses token requests that went through a proxy.
        if (req.headers['x-forwarded-for'] !== undefined) return answer(req, res, 403);
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL) return answer(req, res, 400);
        const token = randomBytes(24).toString('base64url');
        tokens.set(token, Date.now() + ttl * 1000);
        res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
        return answer(req, res, 200, token);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return answer(req, res, 405);
      const token = req.headers['x-aws-ec2-metadata-token'];
      const expiry = typeof token === 'string' ? tokens.get(token) : undefined;
      if (expiry === undefined || expiry < Date.now()) return answer(req, res, 401);
      const route = routes[path];
      const body = route?.();
      if (body === undefined) return answer(req, res, 404, 'Not Found');
      return answer(req, res, 200, body);
    });
  });
  const blocked = new Set<number>();
  let refused = 0;
  server.on('connection', (socket) => {
    if (blocked.size === 0) return;
    const uid = socketUid(socket.remotePort ?? 0, socket.localPort ?? 0);
    if (uid !== undefined && blocked.has(uid)) {
      refused++;
      socket.resetAndDestroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    blockUid(uid) {
      blocked.add(uid);
    },
    unblockAll() {
      blocked.clear();
    },
    get refused() {
      return refused;
    },
    announceSpotInterruption() {
      spot = { action: 'terminate', time: new Date(Date.now() + 120_000).toISOString().replace(/\.\d+Z$/, 'Z') };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
