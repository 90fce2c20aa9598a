/**
 * The metadata emulator (test/support/imds.ts), the agent's IMDSv2 client
 * (packages/agent/src/aws/imds.ts), the AWS SDK's default credential chain fed by the emulator,
 * and the instance runtime (test/support/instance-runtime.ts) end to end: an Auto Scaling group
 * in moto whose UserData boots a stub agent fetched from moto's S3.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImds } from '../packages/agent/src/aws/imds.js';
import { renderUserData } from '../packages/cli/src/userdata.js';
import { startImds, type ImdsEmulator } from './support/imds.js';
import { describeAws, startMoto, type Moto } from './support/moto.js';
import { startInstanceRuntime, type InstanceRuntime, type RuntimeInstance } from './support/instance-runtime.js';

const REGION = 'us-east-1';
/** Unique per run: moto may be shared with other test files (AWS_ENDPOINT_URL). */
const RUN = randomBytes(4).toString('hex');
const BUCKET = `gq-runtime-${RUN}`;
const PREFIX = `gq-rt-${RUN}-`;
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** Whether a process runs (a zombie does not: here PID 1 may be slow to reap orphans). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    if (existsSync('/proc/self')) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}


let work: string;
beforeAll(() => {
  work = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'runtime-'));
});

async function getToken(endpoint: string, ttl = '60'): Promise<Response> {
  return fetch(`${endpoint}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ttl } });
}

describe('IMDS emulator', () => {
  let imds: ImdsEmulator;
  beforeAll(async () => {
    imds = await startImds({ instanceId: 'i-0aaa', instanceType: 'm5.xlarge', region: 'eu-west-1', userData: '#!/bin/bash\n' });
  });
  afterAll(() => imds.stop());

  it('is IMDSv2 only: no token, a made-up token or a bad TTL is refused', async () => {
    expect((await fetch(`${imds.endpoint}/latest/meta-data/instance-id`)).status).toBe(401);
    const forged = await fetch(`${imds.endpoint}/latest/meta-data/instance-id`, {
      headers: { 'x-aws-ec2-metadata-token': 'forged' },
    });
    expect(forged.status).toBe(401);
    expect((await fetch(`${imds.endpoint}/latest/api/token`, { method: 'PUT' })).status).toBe(400);
    expect((await getToken(imds.endpoint, '21601')).status).toBe(400);
    expect((await fetch(`${imds.endpoint}/latest/api/token`)).status).toBe(405);
  });

  it('serves the documented paths with a token', async () => {
    const token = await (await getToken(imds.endpoint)).text();
    const get = async (path: string) => {
      const res = await fetch(`${imds.endpoint}/latest/${path}`, { headers: { 'x-aws-ec2-metadata-token': token } });
      return { status: res.status, body: await res.text() };
    };
    expect(await get('meta-data/instance-id')).toEqual({ status: 200, body: 'i-0aaa' });
    expect(await get('meta-data/instance-type')).toEqual({ status: 200, body: 'm5.xlarge' });
    expect(await get('meta-data/placement/region')).toEqual({ status: 200, body: 'eu-west-1' });
    expect(await get('meta-data/placement/availability-zone')).toEqual({ status: 200, body: 'eu-west-1a' });
    expect(await get('meta-data/iam/security-credentials/')).toEqual({ status: 200, body: 'gq-instance-role' });
    const creds = JSON.parse((await get('meta-data/iam/security-credentials/gq-instance-role')).body) as Record<string, string>;
    expect(creds).toMatchObject({ Code: 'Success', Type: 'AWS-HMAC' });
    expect(creds.AccessKeyId).toMatch(/^ASIA[0-9A-F]{16}$/);
    for (const k of ['SecretAccessKey', 'Token', 'Expiration']) expect(creds[k]).toBeTruthy();
    expect(new Date(creds.Expiration!).getTime()).toBeGreaterThan(Date.now() + 3600_000);
    const doc = JSON.parse((await get('dynamic/instance-identity/document')).body) as Record<string, string>;
    expect(doc).toMatchObject({ instanceId: 'i-0aaa', instanceType: 'm5.xlarge', region: 'eu-west-1' });
    expect(await get('user-data')).toEqual({ status: 200, body: '#!/bin/bash\n' });
    expect((await get('meta-data/spot/instance-action')).status).toBe(404);
    expect((await get('meta-data/nothing-here')).status).toBe(404);
    imds.announceSpotInterruption();
    const spot = await get('meta-data/spot/instance-action');
    expect(spot.status).toBe(200);
    expect(JSON.parse(spot.body)).toMatchObject({ action: 'terminate' });
  });
});

describe('agent IMDS client (createImds)', () => {
  it('reads identity and Spot notices with tokens only, and renews an expired token', async () => {
    const emu = await startImds({ instanceId: 'i-0bbb', instanceType: 'c6g.large', region: 'ap-south-1' });
    const saved = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = emu.endpoint;
    try {
      const imds = createImds({ tokenTtlSeconds: 1 }); // endpoint from the environment
      expect(imds.endpoint).toBe(emu.endpoint);
      expect(await imds.instanceId()).toBe('i-0bbb');
      expect(await imds.instanceType()).toBe('c6g.large');
      expect(await imds.region()).toBe('ap-south-1');
      expect(await imds.availabilityZone()).toBe('ap-south-1a');
      expect(await imds.spotInstanceAction()).toBeUndefined();
      await new Promise((r) => setTimeout(r, 1100)); // token expired
      emu.announceSpotInterruption();
      const action = await imds.spotInstanceAction();
      expect(action?.action).toBe('terminate');
      expect(Date.parse(action!.time)).toBeGreaterThan(Date.now());
      expect(await imds.get('meta-data/nothing-here')).toBeUndefined();
      const gets = emu.requests.filter((r) => r.method === 'GET');
      expect(gets.every((r) => r.token)).toBe(true); // never IMDSv1
      expect(emu.requests.filter((r) => r.method === 'PUT').length).toBeGreaterThanOrEqual(2); // renewed
    } finally {
      if (saved === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = saved;
      await emu.stop();
    }
  });

  it('fails fast when there is no metadata service', async () => {
    const port = await freePort();
    const imds = createImds({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 300, attempts: 2 });
    const started = Date.now();
    await expect(imds.instanceId()).rejects.toThrow(/IMDS/);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describeAws('with moto', () => {
  let moto: Moto;
  beforeAll(async () => {
    moto = (await startMoto())!;
  });
  afterAll(async () => {
    await moto?.stop();
  });

  describe('AWS SDK default credential chain', () => {
    it('gets the instance role from the emulator with nothing but the instance environment', async () => {
      const emu = await startImds({ instanceId: 'i-0ccc', instanceType: 't3.micro', region: REGION });
      const s3 = new S3Client({ region: REGION, endpoint: moto.endpoint, forcePathStyle: true, credentials });
      await s3.send(new CreateBucketCommand({ Bucket: `gq-chain-${RUN}` }));
      await s3.send(new PutObjectCommand({ Bucket: `gq-chain-${RUN}`, Key: 'hello.txt', Body: 'hi' }));
      s3.destroy();
      // The agent passes the region explicitly (--region, or IMDS); everything else comes from the
      // environment an instance has. Run from the repo so that the SDK resolves.
      const script = `
        import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
        const s3 = new S3Client({ region: '${REGION}' });
        const creds = await s3.config.credentials();
        const out = await s3.send(new ListObjectsV2Command({ Bucket: 'gq-chain-${RUN}' }));
        console.log(JSON.stringify({ id: creds.accessKeyId, keys: (out.Contents ?? []).map((c) => c.Key) }));
      `;
      const home = mkdtempSync(join(work, 'chain-'));
      const result = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          cwd: process.cwd(),
          env: {
            PATH: process.env.PATH ?? '',
            HOME: home,
            AWS_ENDPOINT_URL: moto.endpoint,
            AWS_EC2_METADATA_SERVICE_ENDPOINT: emu.endpoint,
          },
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => resolve({ code, out, err }));
      });
      const credsServed = emu.requests.filter((r) => r.path.startsWith('/latest/meta-data/iam/security-credentials/'));
      await emu.stop();
      expect(result.code, result.err).toBe(0);
      const parsed = JSON.parse(result.out.trim()) as { id: string; keys: string[] };
      expect(parsed.keys).toEqual(['hello.txt']);
      expect(parsed.id).toMatch(/^ASIA/);
      expect(credsServed.length).toBeGreaterThanOrEqual(2);
      expect(credsServed.every((r) => r.token && r.status === 200)).toBe(true);
    });
  });

  // ---------------------------------------------------------------------------------------------

  /**
   * Stub agent: records who it is (instance id from IMDS), how it was started and its environment,
   * watches for a Spot notice, and runs until SIGTERM.
   */
  const STUB_AGENT = `
  import { writeFileSync } from 'node:fs';
  const home = process.env.HOME;
  const imds = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  const token = await (await fetch(imds + '/latest/api/token', {
    method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '600' } })).text();
  const get = async (path) => {
    const res = await fetch(imds + '/latest/meta-data/' + path, { headers: { 'x-aws-ec2-metadata-token': token } });
    return res.status === 200 ? res.text() : undefined;
  };
  const instanceId = await get('instance-id');
  process.on('SIGTERM', () => { writeFileSync(home + '/sigterm', instanceId); process.exit(0); });
  writeFileSync(home + '/marker.json', JSON.stringify({
    instanceId, argv: process.argv.slice(2), env: Object.keys(process.env).sort(), cwd: process.cwd(), pid: process.pid,
  }));
  setInterval(async () => {
    try { if (await get('spot/instance-action')) writeFileSync(home + '/spot', instanceId); } catch {}
  }, 200);
  `;

  /** Upload the stub agent (once) and create a launch template whose UserData boots it. */
  let bucketReady: Promise<void> | undefined;
  async function stubLaunchTemplate(name: string): Promise<void> {
    const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials };
    const s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
    const ec2 = new EC2Client(clientConfig);
    try {
      bucketReady ??= (async () => {
        await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'agents/stub/gq-agent.mjs', Body: STUB_AGENT }));
      })();
      await bucketReady;
      const userData = renderUserData({
        region: REGION,
        bucket: BUCKET,
        table: 'gq-status',
        job: 'rt-job',
        instanceType: 't3.micro',
        agentKey: 'agents/stub/gq-agent.mjs',
        agentSha256: sha256(STUB_AGENT),
        nodeVersion: process.version, // the image's node (the test's) is used as it is
        nodeKey: 'node/none.tar.gz',
        nodeSha256: '0'.repeat(64),
      });
      await ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: name,
          LaunchTemplateData: {
            ImageId: 'ami-12c6146b',
            InstanceType: 't3.micro',
            InstanceInitiatedShutdownBehavior: 'terminate',
            UserData: Buffer.from(userData).toString('base64'),
          },
        }),
      );
    } finally {
      s3.destroy();
      ec2.destroy();
    }
  }

  describe('instance runtime', () => {
    let runtime: InstanceRuntime | undefined;
    afterAll(async () => {
      await runtime?.stop();
    });

    it('boots two instances of an Auto Scaling group from their UserData, stops them when they leave', async () => {
      const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials };
      const asg = new AutoScalingClient(clientConfig);
      try {
        await stubLaunchTemplate(`${PREFIX}job`);

        const rootDir = join(work, 'instances');
        runtime = await startInstanceRuntime({
          endpoint: moto.endpoint,
          region: REGION,
          rootDir,
          pollMs: 250,
          graceMs: 3000,
          groups: (name) => name === `${PREFIX}job`,
        });
        expect(runtime.instances()).toEqual([]);

        const t0 = Date.now();
        await asg.send(
          new CreateAutoScalingGroupCommand({
            AutoScalingGroupName: `${PREFIX}job`,
            MinSize: 0,
            MaxSize: 4,
            DesiredCapacity: 2,
            AvailabilityZones: [`${REGION}a`],
            LaunchTemplate: { LaunchTemplateName: `${PREFIX}job`, Version: '$Latest' },
          }),
        );

        const marker = (i: RuntimeInstance) => join(i.home, 'marker.json');
        const booted = await runtime.waitFor(
          // The agent (its service) writes the marker; the UserData that started the service may
          // still be writing its last log line: wait for both.
          (list) => list.length === 2 && list.every((i) => i.alive && existsSync(marker(i)) && i.exitCode !== null),
          30_000,
        );
        console.log(`two instances booted to the agent in ${Date.now() - t0} ms`);

        expect(new Set(booted.map((i) => i.home)).size).toBe(2);
        expect(new Set(booted.map((i) => i.pid)).size).toBe(2);
        for (const i of booted) {
          expect(i.home).toBe(join(rootDir, i.id));
          expect(i.instanceType).toBe('t3.micro');
          expect(i.group).toBe(`${PREFIX}job`);
          const m = JSON.parse(readFileSync(marker(i), 'utf8')) as { instanceId: string; argv: string[]; env: string[]; cwd: string };
          expect(m.instanceId).toBe(i.id); // each process sees its own metadata
          expect(m.argv).toEqual([
            'run', '--backend', 'aws', '--region', REGION, '--bucket', BUCKET, '--table', 'gq-status',
            '--job', 'rt-job', '--instance-type', 't3.micro', '--root-volume-gb', '0', '--task-user', 'gq-task',
          ]);
          // Only what bash itself adds besides the four variables and the machine's process
          // markers: no keys, no region.
          expect(m.env.filter((k) => !['OLDPWD', 'PWD', 'SHLVL', '_'].includes(k))).toEqual([
            'AWS_EC2_METADATA_SERVICE_ENDPOINT',
            'AWS_ENDPOINT_URL',
            'GQ_RUNTIME_INSTANCE',
            'GQ_RUNTIME_UNIT',
            'HOME',
            'PATH',
          ]);
          expect(m.cwd).toBe(join(i.home, 'gq'));
          // The agent runs as the systemd service the UserData installed, not in the UserData.
          expect(i.exitCode).toBe(0);
          expect(runtime.machine(i.id).unit('gq-agent.service')).toMatchObject({ enabled: true, state: 'active' });
          expect(readFileSync(join(i.home, 'gq', 'userdata.log'), 'utf8')).toMatch(/gq-agent.service started/);
          expect(runtime.consoleLog(i.id)).toMatch(/sha256 ok/);
        }

        // A Spot notice reaches only the instance it is for.
        const [first, second] = booted as [RuntimeInstance, RuntimeInstance];
        runtime.announceSpot(second.id);
        await runtime.waitFor(() => existsSync(join(second.home, 'spot')), 10_000);
        expect(existsSync(join(first.home, 'spot'))).toBe(false);

        // The instance leaves its group (as the agent does when idle): its processes are stopped.
        await asg.send(
          new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: first.id, ShouldDecrementDesiredCapacity: true }),
        );
        const after = await runtime.waitFor((list) => list.some((i) => i.id === first.id && !i.alive), 15_000);
        expect(after.find((i) => i.id === first.id)).toMatchObject({ terminated: true, alive: false });
        expect(readFileSync(join(first.home, 'sigterm'), 'utf8')).toBe(first.id); // SIGTERM first, as EC2 does
        expect(after.find((i) => i.id === second.id)).toMatchObject({ terminated: false, alive: true });
        expect(after).toHaveLength(2); // no replacement: desired capacity went down

        await runtime.stop();
        const end = runtime.instances();
        expect(end.every((i) => !i.alive)).toBe(true);
        expect(runtime.shutdownAttempts()).toEqual([]);
        expect(runtime.errors).toEqual([]);
        // No process of either instance is left (pids of the agents included).
        for (const i of booted) {
          const m = JSON.parse(readFileSync(marker(i), 'utf8')) as { pid: number };
          expect(running(m.pid)).toBe(false);
        }
        runtime = undefined;
        await asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: `${PREFIX}job`, ForceDelete: true }));
      } finally {
        asg.destroy();
      }
    });

    it('kills its instances when the test process exits without stop()', async () => {
      // The runtime runs in a child process that exits abruptly once its instance's agent is up.
      const asg = new AutoScalingClient({ region: REGION, endpoint: moto.endpoint, credentials });
      const dir = mkdtempSync(join(work, 'crash-'));
      try {
        await stubLaunchTemplate(`${PREFIX}crash`);
        await build({
          entryPoints: [join(process.cwd(), 'test/support/instance-runtime.ts')],
          outfile: join(dir, 'runtime.mjs'),
          bundle: true,
          platform: 'node',
          format: 'esm',
          target: 'node20',
          logLevel: 'error',
          banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
        });
        writeFileSync(
          join(dir, 'crash.mjs'),
          `import { existsSync, readFileSync } from 'node:fs';
          import { startInstanceRuntime } from './runtime.mjs';
          const rt = await startInstanceRuntime({ endpoint: '${moto.endpoint}', region: '${REGION}', rootDir: '${join(dir, 'instances')}', pollMs: 200, groups: (n) => n === '${PREFIX}crash' });
          const [i] = await rt.waitFor((l) => l.length === 1 && existsSync(l[0].home + '/marker.json'), 30000);
          console.log(JSON.parse(readFileSync(i.home + '/marker.json', 'utf8')).pid);
          process.exit(1);`,
        );
        await asg.send(
          new CreateAutoScalingGroupCommand({
            AutoScalingGroupName: `${PREFIX}crash`,
            MinSize: 0,
            MaxSize: 1,
            DesiredCapacity: 1,
            AvailabilityZones: [`${REGION}a`],
            LaunchTemplate: { LaunchTemplateName: `${PREFIX}crash`, Version: '$Latest' },
          }),
        );
        const result = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const child = spawn(process.execPath, [join(dir, 'crash.mjs')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          child.on('close', (code) => resolve({ code, out, err }));
        });
        expect(result.code, result.err).toBe(1);
        const agentPid = Number(result.out.trim());
        expect(agentPid).toBeGreaterThan(1);
        const deadline = Date.now() + 2000;
        while (running(agentPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(running(agentPid)).toBe(false);
      } finally {
        await asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: `${PREFIX}crash`, ForceDelete: true }));
        asg.destroy();
      }
    });
  });
});
