/**
 * The network an instance has on real EC2, for the test runtime's real-EC2 mode: the UserData and
 * the agent run with NO endpoint override, so they take exactly their EC2 code paths (regional
 * HTTPS endpoints such as https://<bucket>.s3.us-east-1.amazonaws.com and
 * https://sqs.us-east-1.amazonaws.com, the metadata service at http://169.254.169.254, power-off).
 * What this module changes is only where those connections land:
 *
 *  - a TLS-terminating proxy on 127.0.0.1 with a certificate for *.<region>.amazonaws.com and
 *    *.s3.<region>.amazonaws.com, signed by a test CA made here (openssl). It forwards every request
 *    to the emulator endpoint (moto, or whatever proxy is in front of it): virtual-hosted S3
 *    requests become path-style (moto needs it), everything else goes as it came; the hosts asked
 *    for are recorded (`hosts`). The CA reaches clients through the standard variables:
 *    NODE_EXTRA_CA_CERTS (Node) and CURL_CA_BUNDLE (curl).
 *  - name resolution, without touching the command lines: curl reads `connect-to` lines from the
 *    .curlrc in CURL_HOME (curl's own config file: every curl call of the UserData uses it), and
 *    Node processes get a `--import` hook (NODE_OPTIONS) that sends connections for
 *    *.amazonaws.com:443 and 169.254.169.254:80 to the same places. Nothing else is redirected.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface RealEc2Network {
  /** The test CA's certificate (PEM file). */
  caFile: string;
  /** Every Host the proxy was asked for, in order. */
  readonly hosts: readonly string[];
  /** Environment for one instance whose metadata emulator listens on imdsPort. */
  instanceEnv(instanceId: string, imdsPort: number): Record<string, string>;
  stop(): Promise<void>;
}

/** The Node hook: redirects connect() for AWS hosts and the metadata address (see the module comment). */
const HOOK = `// gq test runtime (real-EC2 mode): where connections to AWS and the metadata service land.
import net from 'node:net';
import { readFileSync } from 'node:fs';
const map = JSON.parse(readFileSync(process.env.GQ_RUNTIME_CONNECT_TO, 'utf8'));
const target = (host, port) => {
  if (host === '169.254.169.254' && Number(port) === 80) return map.imds;
  if (typeof host === 'string' && /\\.amazonaws\\.com\\.?$/.test(host) && Number(port) === 443) return map.aws;
  return undefined;
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = args[0];
  if (Array.isArray(first) && first[0] && typeof first[0] === 'object') {
    // net.connect() passes its normalized [options, cb] array (a fresh one per call).
    const t = target(first[0].host, first[0].port);
    if (t) first[0] = { ...first[0], host: t.host, port: t.port };
  } else if (first && typeof first === 'object') {
    const t = target(first.host, first.port);
    if (t) args[0] = { ...first, host: t.host, port: t.port };
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\\d+$/.test(first))) {
    const host = typeof args[1] === 'string' ? args[1] : 'localhost';
    const t = target(host, first);
    if (t) { args[0] = t.port; if (typeof args[1] === 'string') args[1] = t.host; else args.splice(1, 0, t.host); }
  }
  return connect.apply(this, args);
};
`;

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr || r.error?.message}`);
}

export function opensslAvailable(): boolean {
  return spawnSync('openssl', ['version']).status === 0;
}

export async function startRealEc2Network(o: { endpoint: string; region: string; dir: string }): Promise<RealEc2Network> {
  mkdirSync(o.dir, { recursive: true });
  chmodSync(o.dir, 0o755);
  const d = o.dir;
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=gq test CA'], d);
  writeFileSync(
    join(d, 'ext.cnf'),
    `subjectAltName=DNS:*.${o.region}.amazonaws.com,DNS:*.s3.${o.region}.amazonaws.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'aws.key', '-out', 'aws.csr', '-subj', `/CN=*.${o.region}.amazonaws.com`], d);
  openssl(['x509', '-req', '-in', 'aws.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'aws.pem', '-days', '2', '-extfile', 'ext.cnf'], d);
  chmodSync(join(d, 'ca.pem'), 0o644);
  const hook = join(d, 'hook.mjs');
  writeFileSync(hook, HOOK);
  chmodSync(hook, 0o644);

  const target = new URL(o.endpoint);
  const hosts: string[] = [];
  const s3Host = new RegExp(`^(.+)\\.s3\\.${o.region.replace(/-/g, '\\-')}\\.amazonaws\\.com$`);
  const server: Server = createHttpsServer(
    { key: readFileSync(join(d, 'aws.key')), cert: readFileSync(join(d, 'aws.pem')) },
    (req, res) => {
      const host = (req.headers.host ?? '').replace(/:443$/, '');
      hosts.push(host);
      const bucket = s3Host.exec(host)?.[1];
      const path = bucket ? `/${bucket}${req.url === '/' ? '' : req.url}` : req.url;
      const headers = { ...req.headers, host: target.host };
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path, headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => res.writeHead(502).end(`gq test proxy: ${e.message}`));
      req.pipe(up);
    },
  );
  server.keepAliveTimeout = 70_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;

  return {
    caFile: join(d, 'ca.pem'),
    hosts,
    instanceEnv(instanceId, imdsPort) {
      const dir = join(d, instanceId);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, '.curlrc'), `connect-to = "169.254.169.254:80:127.0.0.1:${imdsPort}"\nconnect-to = ":443:127.0.0.1:${port}"\n`);
      const map = join(dir, 'connect-to.json');
      writeFileSync(map, JSON.stringify({ imds: { host: '127.0.0.1', port: imdsPort }, aws: { host: '127.0.0.1', port } }));
      for (const f of ['.curlrc', 'connect-to.json']) chmodSync(join(dir, f), 0o644);
      return {
        CURL_HOME: dir,
        CURL_CA_BUNDLE: join(d, 'ca.pem'),
        NODE_EXTRA_CA_CERTS: join(d, 'ca.pem'),
        NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`,
        GQ_RUNTIME_CONNECT_TO: map,
      };
    },
    stop: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
