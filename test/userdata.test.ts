/**
 * The worker UserData (packages/cli/src/userdata.ts, the script
 * packages/cli/boot/worker-boot.sh behind a header of variables): size with the largest legal inputs,
 * no secrets, bash syntax, and whole boots of the script on an emulated machine
 * (test/support/machine.ts: systemd, stand-ins) against moto and the IMDS emulator, with an agent
 * stub: the service it installs, the image's node or the bucket's, the boot-failure report (the
 * BOOT_FAILED status item in moto's DynamoDB and the TerminateInstanceInAutoScalingGroup call,
 * captured by a local stand-in: the emulated instance is in no Auto Scaling group;
 * test/boot-failure.test.ts does it for real), and curl's SigV4 signatures checked against the
 * SDK's signer (moto does not check signatures).
 */
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AGENT_UNIT,
  checkUserData,
  FAILED_UNIT,
  PARAM_RULES,
  PINNED_NODE_VERSION,
  renderUserData,
  userDataBudgetBytes,
  userDataLimitBytes,
  type UserDataParams,
} from '../packages/cli/src/userdata.js';
import { DynamoStatusStore } from '../packages/common/src/aws/status-store/index.js';
import type { AwsClients } from '../packages/common/src/aws/clients.js';
import { JOB_NAME_MAX_LENGTH } from '../packages/common/src/job/names.js';
import { startImds, type ImdsEmulator } from './support/imds.js';
import { parseUnitFile, splitWords, startMachine, type Machine } from './support/machine.js';
import { describeAws, createSharedResources, motoClients, startMoto, type Moto } from './support/moto.js';

const REGION = 'us-east-1';
/** Unique per run: moto may be shared with other test files (AWS_ENDPOINT_URL). */
const BUCKET = `gq-userdata-${randomBytes(4).toString('hex')}`;
const TABLE = `${BUCKET}-status`;
const INSTANCE = 'i-0123456789abcdef0';
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------------------------------------

const params: UserDataParams = {
  region: REGION,
  bucket: BUCKET,
  table: TABLE,
  job: 'job-1',
  instanceType: 'c5.large',
  agentKey: 'agent/0.1.0/gq-agent-0123456789abcdef.mjs',
  agentSha256: 'a'.repeat(64),
  nodeVersion: PINNED_NODE_VERSION,
  nodeKey: `node/${PINNED_NODE_VERSION}/node-${PINNED_NODE_VERSION}-linux-x64.tar.gz`,
  nodeSha256: 'b'.repeat(64),
  logLevel: 'info',
};

/** The largest inputs the validators accept, each at its maximum length. */
const largest: UserDataParams = {
  region: `us-${'a'.repeat(PARAM_RULES.region[2] - 6)}-12`,
  bucket: `b${'x'.repeat(61)}b`,
  table: 't'.repeat(255),
  job: `j${'x'.repeat(JOB_NAME_MAX_LENGTH - 1)}`,
  instanceType: `${'a'.repeat(16)}.${'b'.repeat(16)}`,
  agentKey: 'k'.repeat(200),
  agentSha256: 'f'.repeat(64),
  nodeVersion: 'v999.999.999',
  nodeKey: 'n'.repeat(200),
  nodeSha256: 'e'.repeat(64),
  logLevel: 'debug',
  taskAwsAccess: true,
  onDemand: true,
};

/**
 * An agent stand-in: records how it was started (and as whom), then exits with $STUB_EXIT (default
 * 0); with STUB_WAIT set it runs until SIGTERM and then exits 0; with STUB_KILL set it SIGKILLs
 * itself on its first start.
 */
const STUB_AGENT = `
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
const file = process.env.HOME + '/agent-ran.json';
const first = !existsSync(file);
writeFileSync(file, JSON.stringify({
  argv: process.argv.slice(2), node: process.version, execPath: process.execPath, uid: process.getuid(),
  env: Object.keys(process.env).sort(), logLevel: process.env.GQ_LOG_LEVEL ?? null,
}));
appendFileSync(process.env.HOME + '/agent-starts', 'x');
if (process.env.STUB_KILL && first) process.kill(process.pid, 'SIGKILL');
if (process.env.STUB_WAIT) {
  process.on('SIGTERM', () => { writeFileSync(process.env.HOME + '/agent-sigterm', ''); process.exit(0); });
  setInterval(() => {}, 1000);
} else {
  process.exit(Number(process.env.STUB_EXIT ?? 0));
}
`;

/** A request as a stand-in server saw it. */
interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP server that records requests and answers with `answer` (default 200, empty). */
async function captureServer(
  answer: (req: Captured, n: number) => { status: number; body: string } = () => ({ status: 200, body: '' }),
): Promise<{ endpoint: string; port: number; seen: Captured[]; close(): Promise<void> }> {
  const seen: Captured[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const c = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(c);
      const a = answer(c, seen.length);
      res.writeHead(a.status, { 'content-length': Buffer.byteLength(a.body) }).end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** What Auto Scaling answers a TerminateInstanceInAutoScalingGroup with (abridged). */
const TERMINATE_RESPONSE =
  '<TerminateInstanceInAutoScalingGroupResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">' +
  '<TerminateInstanceInAutoScalingGroupResult><Activity><StatusCode>InProgress</StatusCode>' +
  `<Description>Terminating EC2 instance: ${INSTANCE}</Description></Activity></TerminateInstanceInAutoScalingGroupResult>` +
  '</TerminateInstanceInAutoScalingGroupResponse>';
const TERMINATE_BODY = `Action=TerminateInstanceInAutoScalingGroup&InstanceId=${INSTANCE}&ShouldDecrementDesiredCapacity=true&Version=2011-01-01`;

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data) =>
  typeof d === 'string' ? Buffer.from(d) : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
/** node:crypto as the SDK signer's hash. */
class Sha256 {
  private h;
  constructor(secret?: Data) {
    this.h = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(d: Data) {
    this.h.update(bytes(d));
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}

/**
 * The Authorization header the SDK's own SigV4 signer computes for a captured request, signing
 * `signed` (host added) plus what the signer adds itself (x-amz-date, x-amz-security-token).
 * Moto does not check signatures, so this is how curl's signing is checked.
 */
async function sdkAuthorization(
  imdsEndpoint: string,
  service: string,
  req: Captured,
  port: number,
  signed: string[],
): Promise<string> {
  const token = await (
    await fetch(`${imdsEndpoint}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })
  ).text();
  const c = (await (
    await fetch(`${imdsEndpoint}/latest/meta-data/iam/security-credentials/gq-instance-role`, {
      headers: { 'x-aws-ec2-metadata-token': token },
    })
  ).json()) as { AccessKeyId: string; SecretAccessKey: string; Token: string };
  expect(req.headers['x-amz-security-token']).toBe(c.Token);
  const signer = new SignatureV4({
    service,
    region: REGION,
    credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.Token },
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const amzDate = String(req.headers['x-amz-date']);
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const headers: Record<string, string> = { host: `127.0.0.1:${port}` };
  for (const h of signed) headers[h] = String(req.headers[h]);
  const out = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: '127.0.0.1', port, path: req.url, query: {}, headers, body: req.body },
    { signingDate },
  );
  return String(out.headers.authorization);
}

/** The real curl, and whether it signs AWS requests (--aws-sigv4, --fail-with-body: curl >= 7.76). */
const realCurl = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).stdout.trim();
const curlSigV4 = (() => {
  const m = /^curl (\d+)\.(\d+)/.exec(realCurl ? spawnSync(realCurl, ['--version'], { encoding: 'utf8' }).stdout : '');
  return m ? Number(m[1]) * 100 + Number(m[2]) >= 776 : false;
})();

// The UserData signs its AWS calls with curl --aws-sigv4 (curl >= 7.76, as every supported image
// has). A machine whose curl lacks it cannot run these boots: that fails, it is never skipped.
const withMoto = curlSigV4
  ? describeAws
  : (name: string, _fn: () => void) =>
      describe(name, () => {
        it('needs curl >= 7.76 (--aws-sigv4) to boot the UserData', () => {
          throw new Error('this curl has no --aws-sigv4; install curl >= 7.76');
        });
      });

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'userdata-'));
});

describe('renderUserData', () => {
  it('stays within gq\'s 12 KiB budget (EC2 allows 16 KB) even with the largest legal inputs', () => {
    const typical = checkUserData(renderUserData(params));
    const big = checkUserData(renderUserData(largest));
    for (const c of [typical, big]) expect(c.problems).toEqual([]);
    expect(userDataLimitBytes).toBe(16_384);
    expect(userDataBudgetBytes).toBe(12 * 1024);
    expect(big.bytes).toBeLessThanOrEqual(userDataBudgetBytes);
    // The README says "about 9 KB".
    expect(typical.bytes).toBeGreaterThan(8 * 1024);
    expect(typical.bytes).toBeLessThan(10 * 1024);
    // Every input at its maximum really is legal, and one character more is not.
    for (const [name, [, , max]] of Object.entries(PARAM_RULES)) {
      const v = String(largest[name as keyof UserDataParams]);
      if (!/Sha256$/.test(name)) expect(v.length, name).toBe(name === 'nodeVersion' ? 12 : max);
    }
    expect(() => renderUserData({ ...largest, table: 't'.repeat(256) })).toThrow(/table/);
    expect(() => renderUserData({ ...largest, agentKey: 'k'.repeat(201) })).toThrow(/agentKey/);
    expect(() => renderUserData({ ...largest, region: `${largest.region}3` })).toThrow(/region/);
    console.log(`UserData: ${typical.bytes} bytes typical, ${big.bytes} bytes with the largest inputs (budget ${userDataBudgetBytes})`);
  });

  it('is the boot script file behind a header that only sets variables', () => {
    const file = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'cli', 'boot', 'worker-boot.sh'), 'utf8');
    const body = file.replace(/^(#.*\n)+/, '');
    expect(body.length).toBeGreaterThan(5000); // the comment is left out, the code is all there
    for (const p of [params, largest]) {
      const text = renderUserData(p);
      expect(text.endsWith(body)).toBe(true);
      const header = text.slice(0, -body.length).split('\n').slice(0, -1);
      expect(header[0]).toBe('#!/bin/bash');
      for (const line of header.slice(1)) expect(line).toMatch(/^(#.*|(export )?([A-Z][A-Z_]*=('[^']*'|[^\s'$`;&|]*) ?)+)$/);
    }
  });

  it('passes bash -n, whatever the parameters', () => {
    for (const p of [params, largest]) {
      const dir = mkdtempSync(join(work, 'syntax-'));
      const file = join(dir, 'userdata.sh');
      writeFileSync(file, renderUserData(p));
      const r = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });

  it('holds no secrets, whatever extra fields it is handed', () => {
    const licence = 'LICENSE-KEY-5f1c9e2a-gurobi-secret';
    const accessKey = 'AKIAIOSFODNN7EXAMPLE';
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const text = renderUserData({
      ...params,
      // Not part of the type: a caller passing them by mistake must not leak them.
      ...({ license: licence, licenseKey: licence, accessKeyId: accessKey, secretAccessKey: secret } as object),
    } as UserDataParams);
    for (const s of [licence, accessKey, secret]) expect(text).not.toContain(s);
    expect(text).not.toMatch(/\b(AKIA|ASIA)[A-Z0-9]{16}\b/);
    expect(text.toLowerCase()).not.toContain('aws_secret_access_key');
    expect(text.toLowerCase()).not.toContain('aws_access_key_id');
  });

  it('checkUserData flags size and secret-looking content', () => {
    const ok = '#!/bin/bash\necho hi\n';
    expect(checkUserData(ok)).toEqual({ ok: true, bytes: ok.length, problems: [] });
    expect(checkUserData(ok + 'x'.repeat(userDataLimitBytes)).problems[0]).toMatch(/less than 16384/);
    expect(checkUserData(ok + 'export AWS_SECRET_ACCESS_KEY=x\n').ok).toBe(false);
    expect(checkUserData(ok + 'K=AKIAIOSFODNN7EXAMPLE\n').ok).toBe(false);
    expect(checkUserData(ok + 'LICENSE_KEY=abc\n').ok).toBe(false);
    expect(checkUserData('echo no shebang\n').ok).toBe(false);
  });

  it('rejects malformed parameters', () => {
    expect(() => renderUserData({ ...params, agentSha256: 'abc' })).toThrow(/agentSha256/);
    expect(() => renderUserData({ ...params, nodeSha256: 'abc' })).toThrow(/nodeSha256/);
    expect(() => renderUserData({ ...params, region: 'us-east-1; rm -rf /' })).toThrow(/region/);
    expect(() => renderUserData({ ...params, job: "x'; touch /tmp/gq-pwned; echo '" })).toThrow(/job/);
    expect(() => renderUserData({ ...params, agentKey: 'a b' })).toThrow(/agentKey/);
    expect(() => renderUserData({ ...params, nodeVersion: 'latest' })).toThrow(/nodeVersion/);
    expect(() => renderUserData({ ...params, logLevel: 'loud' })).toThrow(/logLevel/);
  });

  it('says whether tasks may use the instance role', () => {
    expect(renderUserData(params)).toMatch(/ TA=''\n/);
    expect(renderUserData({ ...params, taskAwsAccess: true })).toMatch(/ TA=--task-aws-access\n/);
  });
});

describe('unit file parsing of the machine emulator', () => {
  it('follows systemd quoting and repeated keys', () => {
    expect(splitWords(`/bin/bash "/a b/boot.sh" agent 'x y'`)).toEqual(['/bin/bash', '/a b/boot.sh', 'agent', 'x y']);
    const u = parseUnitFile('[Unit]\nOnFailure=a.service\n# c\n[Service]\nEnvironment="HOME=/h"\nEnvironment=X=1\n[Install]\nWantedBy=multi-user.target\n');
    expect(u.unit.OnFailure).toEqual(['a.service']);
    expect(u.service.Environment).toEqual(['"HOME=/h"', 'X=1']);
    expect(() => parseUnitFile('[Nope]\n')).toThrow(/section/);
  });
});

// ---------------------------------------------------------------------------------------------

describeAws('with moto', () => {
  let moto: Moto;
  let s3: S3Client;
  let imds: ImdsEmulator;
  let clients: AwsClients;
  let status: DynamoStatusStore;
  /** Stand-in for Auto Scaling: the emulated instance is in no group. */
  let autoScaling: Awaited<ReturnType<typeof captureServer>>;
  const machines: Machine[] = [];

  beforeAll(async () => {
    moto = (await startMoto())!;
    s3 = new S3Client({
      region: REGION,
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    await createSharedResources(moto.endpoint, { bucket: BUCKET, table: TABLE });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'agents/stub/gq-agent.mjs', Body: STUB_AGENT }));
    imds = await startImds({ instanceId: INSTANCE, instanceType: 'c5.large', region: REGION });
    clients = motoClients(moto.endpoint);
    status = new DynamoStatusStore(clients.ddb, { table: TABLE });
    autoScaling = await captureServer(() => ({ status: 200, body: TERMINATE_RESPONSE }));
  });

  afterAll(async () => {
    for (const m of machines) await m.kill();
    s3?.destroy();
    clients?.destroy();
    await autoScaling?.close();
    await imds?.stop();
    await moto?.stop();
  });

  beforeEach(() => {
    autoScaling.seen.length = 0;
  });

  const stubParams = (job = 'job-run'): UserDataParams => ({
    ...params,
    job,
    nodeVersion: process.version, // the image's node (this one) is the right version
    agentKey: 'agents/stub/gq-agent.mjs',
    agentSha256: sha256(STUB_AGENT),
  });

  /** Boot a machine with this UserData; resolves once its UserData ended. */
  async function boot(name: string, text: string, env: Record<string, string> = {}): Promise<Machine> {
    const home = join(work, name);
    const m = await startMachine({
      id: INSTANCE,
      home,
      userData: text,
      imds,
      env: {
        PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
        HOME: home,
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_ENDPOINT_URL_AUTO_SCALING: autoScaling.endpoint,
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
        ...env,
      },
    });
    machines.push(m);
    m.boot();
    await until(() => m.userDataExit() !== null, 30_000, () => log(m));
    return m;
  }

  const log = (m: Machine) => (existsSync(join(m.home, 'gq', 'userdata.log')) ? readFileSync(join(m.home, 'gq', 'userdata.log'), 'utf8') : '');

  async function until(cond: () => boolean, ms: number, why: () => string = () => ''): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms\n${why()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The status item of the emulated instance in `job`, read the way `gq status` reads it. */
  async function instanceItem(job: string) {
    return (await status.listInstances(job)).find((i) => i.instance === INSTANCE);
  }

  /** The Auto Scaling stand-in got exactly one terminate-with-decrement of this instance, signed right. */
  async function expectLeft(): Promise<void> {
    expect(autoScaling.seen).toHaveLength(1);
    const req = autoScaling.seen[0]!;
    expect(req).toMatchObject({ method: 'POST', url: '/', body: TERMINATE_BODY });
    expect(req.headers.authorization).toBe(await sdkAuthorization(imds.endpoint, 'autoscaling', req, autoScaling.port, ['content-type']));
  }

  it('first boot: the image node, the agent checked, gq-task, the service enabled for reboots; no power-off', async () => {
    const m = await boot('run-ok', renderUserData(stubParams()), { STUB_WAIT: '1' });
    expect(m.userDataExit(), log(m)).toEqual({ code: 0, signal: null });
    await until(() => existsSync(join(m.home, 'agent-ran.json')), 15_000, () => log(m));
    const text = log(m);
    expect(text).toMatch(/using node v\d+/);
    expect(text).toMatch(/GET s3:\/\/.*gq-agent.mjs: sha256 ok/);
    expect(text).toMatch(/gq-agent.service started/);
    const ran = JSON.parse(readFileSync(join(m.home, 'agent-ran.json'), 'utf8')) as { argv: string[]; logLevel: string; uid: number };
    expect(ran.argv).toEqual([
      'run', '--backend', 'aws', '--region', REGION, '--bucket', BUCKET, '--table', TABLE,
      '--job', 'job-run', '--instance-type', 'c5.large', '--root-volume-gb', '0', '--task-user', 'gq-task',
    ]);
    expect(ran.logLevel).toBe('info');
    // The units as systemd reads them: restarts bounded, enabled for multi-user.target, OnFailure.
    const agent = parseUnitFile(readFileSync(join(m.home, 'gq', AGENT_UNIT), 'utf8'));
    expect(agent.service).toMatchObject({ Restart: ['on-failure'], ExecStart: [`/bin/bash "${m.home}/gq/boot.sh" agent`] });
    expect(agent.unit).toMatchObject({ OnFailure: [FAILED_UNIT], StartLimitBurst: ['4'], StartLimitIntervalSec: ['900'] });
    expect(agent.install.WantedBy).toEqual(['multi-user.target']);
    expect(m.unit(AGENT_UNIT)).toMatchObject({ enabled: true, state: 'active' });
    expect(m.unit(FAILED_UNIT)).toMatchObject({ enabled: false, state: 'inactive' });
    // gq-task made, the metadata service blocked for it (an owner-match rule for its uid).
    const calls = m.calls();
    expect(calls).toContain('useradd --system --no-create-home --shell /usr/sbin/nologin gq-task');
    const uid = spawnSync('id', ['-u', process.getuid?.() === 0 ? 'nobody' : (process.env.USER ?? '')], { encoding: 'utf8' }).stdout.trim();
    expect(calls).toContain(`iptables -w -I OUTPUT -d 169.254.169.254 -m owner --uid-owner ${uid} -j REJECT`);
    expect(calls.filter((c) => /^(shutdown|poweroff|halt)/.test(c))).toEqual([]);
    expect(autoScaling.seen).toEqual([]); // a good boot does not leave its group
    expect(await instanceItem('job-run')).toBeUndefined();

    // Stopped from outside (shutdown, scale-in): the agent gets SIGTERM, nothing is reported.
    await m.stop(5000);
    expect(existsSync(join(m.home, 'agent-sigterm'))).toBe(true);
    expect(autoScaling.seen).toEqual([]);
    expect(log(m)).not.toMatch(/boot failed/);
  });

  it('with --task-aws-access the metadata service stays open to tasks', async () => {
    const m = await boot('run-access', renderUserData({ ...stubParams('job-access'), taskAwsAccess: true }));
    expect(m.userDataExit()?.code, log(m)).toBe(0);
    await until(() => existsSync(join(m.home, 'agent-ran.json')), 15_000, () => log(m));
    const ran = JSON.parse(readFileSync(join(m.home, 'agent-ran.json'), 'utf8')) as { argv: string[] };
    expect(ran.argv.slice(-3)).toEqual(['--task-user', 'gq-task', '--task-aws-access']);
    expect(m.calls().filter((c) => c.startsWith('iptables'))).toEqual([]);
  });

  it('an agent that ends for good (status 2): BOOT_FAILED recorded, userdata.log uploaded, group left', async () => {
    const m = await boot('run-fail', renderUserData(stubParams('job-fail')), { STUB_EXIT: '2' });
    await until(() => m.unit(AGENT_UNIT)?.state === 'inactive' && autoScaling.seen.length > 0, 20_000, () => log(m));
    await until(() => /not powering off/.test(log(m)), 5000, () => log(m));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `jobs/job-fail/instances/${INSTANCE}/userdata.log` }));
    expect(await got.Body!.transformToString()).toMatch(/gq-agent exited with status 2/);
    const item = await instanceItem('job-fail');
    expect(item).toMatchObject({ job: 'job-fail', instance: INSTANCE, instanceType: 'c5.large', state: 'BOOT_FAILED', detail: 'gq-agent exited with status 2' });
    expect(Math.abs(Date.parse(item!.heartbeatAt) - Date.now())).toBeLessThan(60_000);
    await expectLeft();
    const text = log(m);
    expect(text).toMatch(/failure recorded/);
    expect(text).toMatch(/left the Auto Scaling group/);
    expect(text).not.toMatch(/not recorded|could not/);
    expect(m.unit(AGENT_UNIT)?.starts).toHaveLength(1); // final: not started again
  });

  it('does not run the agent when its sha256 does not match, and says so in the status item', async () => {
    const m = await boot('run-badsha', renderUserData({ ...stubParams('job-badsha'), agentSha256: 'd'.repeat(64) }));
    expect(m.userDataExit()?.code).toBe(3);
    expect(existsSync(join(m.home, 'agent-ran.json'))).toBe(false);
    expect(m.unit(AGENT_UNIT)).toBeUndefined(); // never installed
    const item = await instanceItem('job-badsha');
    expect(item?.state).toBe('BOOT_FAILED');
    expect(item?.detail).toBe(
      `agent download failed: GET s3://${BUCKET}/agents/stub/gq-agent.mjs: sha256 mismatch, expected ${'d'.repeat(64)}, got ${sha256(STUB_AGENT)}`,
    );
    await expectLeft();
    expect(log(m)).not.toMatch(/not recorded|could not/);
  });

  it('keeps the INSTALL_FAILED item the agent wrote (its detail says more), still leaves the group', async () => {
    await status.putInstance({
      job: 'job-install',
      instance: INSTANCE,
      instanceType: 'c5.large',
      state: 'INSTALL_FAILED',
      heartbeatAt: new Date().toISOString(),
      detail: 'install exited with code 1 (after 2 attempts)',
      installLogKey: `jobs/job-install/instances/${INSTANCE}/install.log`,
    });
    const m = await boot('run-install-failed', renderUserData(stubParams('job-install')), { STUB_EXIT: '3' });
    await until(() => autoScaling.seen.length > 0, 20_000, () => log(m));
    expect(await instanceItem('job-install')).toMatchObject({
      state: 'INSTALL_FAILED',
      detail: 'install exited with code 1 (after 2 attempts)',
      installLogKey: `jobs/job-install/instances/${INSTANCE}/install.log`,
    });
    expect(log(m)).toMatch(/ConditionalCheckFailed/);
    expect(log(m)).toMatch(/failure not recorded/);
    await expectLeft();
  });

  it('an agent killed by SIGKILL (OOM killer) is started again by systemd: no report, no decrement', async () => {
    const m = await boot('run-sigkill', renderUserData(stubParams('job-sigkill')), { STUB_KILL: '1', STUB_WAIT: '1' });
    await until(() => existsSync(join(m.home, 'agent-starts')) && readFileSync(join(m.home, 'agent-starts'), 'utf8').length === 2, 20_000, () => log(m));
    expect(m.unit(AGENT_UNIT)).toMatchObject({ state: 'active' });
    expect(log(m)).toMatch(/gq-agent exited with status 137/);
    expect(await instanceItem('job-sigkill')).toBeUndefined();
    expect(autoScaling.seen).toEqual([]);
    await m.stop(5000);
  });

  /** The pinned Node.js in the bucket, and an old node first on PATH (the image's). */
  async function bucketNode(name: string, tamper: boolean) {
    const version = 'v22.99.0';
    const root = join(work, name);
    const dist = `node-${version}-linux-x64`;
    mkdirSync(join(root, dist, 'bin'), { recursive: true });
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, dist, 'bin', 'node'), `#!/bin/sh\n[ "$1" = --version ] && { echo ${version}; exit 0; }\nexec '${process.execPath}' "$@"\n`);
    writeFileSync(join(root, 'bin', 'node'), '#!/bin/sh\necho v18.20.0\n');
    for (const f of [join(root, dist, 'bin', 'node'), join(root, 'bin', 'node')]) chmodSync(f, 0o755);
    expect(spawnSync('tar', ['-czf', `${dist}.tar.gz`, dist], { cwd: root }).status).toBe(0);
    const data = readFileSync(join(root, `${dist}.tar.gz`));
    const key = `node/${version}/${dist}.tar.gz`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data }));
    return { version, key, sha: tamper ? 'e'.repeat(64) : sha256(data), real: sha256(data), bin: join(root, 'bin') };
  }

  it('installs the pinned node from the gq bucket (sha256 checked) when the image has another version', async () => {
    const n = await bucketNode('bucket-node', false);
    const m = await boot('run-bucket-node', renderUserData({ ...stubParams(), nodeVersion: n.version, nodeKey: n.key, nodeSha256: n.sha }), {
      PATH: `${n.bin}:${dirname(process.execPath)}:${process.env.PATH}`,
    });
    expect(m.userDataExit()?.code, log(m)).toBe(0);
    expect(log(m)).toMatch(new RegExp(`GET s3://${BUCKET}/${n.key}: sha256 ok`));
    expect(log(m)).toMatch(/installed node v22\.99\.0/);
    await until(() => existsSync(join(m.home, 'agent-ran.json')), 15_000, () => log(m));
    expect(existsSync(join(m.home, 'gq', 'node', 'bin', 'node'))).toBe(true);
    expect(existsSync(join(m.home, 'gq', 'node.tgz'))).toBe(false);
  });

  it('refuses a node tarball whose sha256 is not the published one, and reports it without node', async () => {
    const n = await bucketNode('bucket-node-bad', true);
    const m = await boot('run-bucket-node-bad', renderUserData({ ...stubParams('job-node-bad'), nodeVersion: n.version, nodeKey: n.key, nodeSha256: n.sha }), {
      PATH: `${n.bin}:${dirname(process.execPath)}:${process.env.PATH}`,
    });
    expect(m.userDataExit()?.code).toBe(3);
    expect(existsSync(join(m.home, 'agent-ran.json'))).toBe(false);
    const item = await instanceItem('job-node-bad');
    expect(item).toMatchObject({ job: 'job-node-bad', state: 'BOOT_FAILED' });
    expect(item?.detail).toBe(`Node.js install failed: GET s3://${BUCKET}/${n.key}: sha256 mismatch, expected ${n.sha}, got ${n.real}`);
    await expectLeft();
    expect(log(m)).toMatch(/uploaded s3:/);
    expect(log(m)).not.toMatch(/not recorded|could not/);
  });

  it("curl signs S3 GET and PUT exactly as the SDK does (SigV4 with the role's session token)", async () => {
    const body = STUB_AGENT;
    const s3Stub = await captureServer((req) => (req.method === 'GET' ? { status: 200, body } : { status: 200, body: '' }));
    try {
      const m = await boot('run-sig', renderUserData({ ...stubParams('job-sig'), agentKey: 'k/obj.mjs' }), {
        AWS_ENDPOINT_URL_S3: s3Stub.endpoint,
        STUB_EXIT: '2', // ends for good: the report PUTs userdata.log
      });
      await until(() => autoScaling.seen.length > 0, 20_000, () => log(m));
      await until(() => s3Stub.seen.some((r) => r.method === 'PUT'), 5000, () => log(m));
      const get = s3Stub.seen.find((r) => r.method === 'GET')!;
      expect(get.url).toBe(`/${BUCKET}/k/obj.mjs`);
      expect(get.headers['x-amz-content-sha256']).toBe(sha256(''));
      expect(get.headers.authorization).toBe(await sdkAuthorization(imds.endpoint, 's3', get, s3Stub.port, ['x-amz-content-sha256']));
      const put = s3Stub.seen.find((r) => r.method === 'PUT')!;
      expect(put.url).toBe(`/${BUCKET}/jobs/job-sig/instances/${INSTANCE}/userdata.log`);
      expect(put.headers['x-amz-content-sha256']).toBe(sha256(put.body));
      expect(put.body).toMatch(/boot failed: gq-agent exited with status 2/);
      expect(put.headers.authorization).toBe(
        await sdkAuthorization(imds.endpoint, 's3', put, s3Stub.port, ['content-type', 'x-amz-content-sha256']),
      );
      // The role's credentials never appear on a command line (they reach curl on stdin).
      expect(readFileSync(join(m.home, 'gq', 'boot.sh'), 'utf8')).toMatch(/curl -sS --fail-with-body -K -/);
    } finally {
      await s3Stub.close();
    }
  });
});
