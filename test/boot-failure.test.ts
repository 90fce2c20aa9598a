/**
 * A failed boot ends the boot loop (packages/cli/src/userdata.ts), for real against moto:
 * Auto Scaling groups whose UserData fails (an agent key whose sha256 does not match, and a stub
 * agent that exits 1 at start), booted by the instance runtime (test/support/instance-runtime.ts).
 * Each instance records BOOT_FAILED with the reason in the status table, uploads its
 * userdata.log, and terminates itself in its group with the desired capacity decremented: the
 * group goes from 1 to 0 and no replacement is booted. Nothing tries to power off.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsClients } from '../packages/common/src/aws/clients.js';
import { DynamoStatusStore } from '../packages/common/src/aws/status-store/index.js';
import { renderUserData } from '../packages/cli/src/userdata.js';
import { startInstanceRuntime, type InstanceRuntime, type RuntimeInstance } from './support/instance-runtime.js';
import { describeAws, createSharedResources, motoClients, startMoto, type Moto } from './support/moto.js';

const REGION = 'us-east-1';
/** Unique per run: moto may be shared with other test files (AWS_ENDPOINT_URL). */
const RUN = randomBytes(4).toString('hex');
const BUCKET = `gq-bootfail-${RUN}`;
const TABLE = `gq-bootfail-${RUN}-status`;
const PREFIX = `gq-bf-${RUN}-`;
const JOB = `bootfail-${RUN}`;
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');

/** An agent that crashes at start, as a broken bundle would. */
const CRASHING_AGENT = `console.error('gq-agent: internal error (stub: crashes at start)'); process.exit(1);\n`;


describeAws('a failed boot leaves its Auto Scaling group for good', () => {
  let moto: Moto;
  let clients: AwsClients;
  let asg: AutoScalingClient;
  let ec2: EC2Client;
  let status: DynamoStatusStore;
  let runtime: InstanceRuntime | undefined;

  beforeAll(async () => {
    moto = (await startMoto())!;
    await createSharedResources(moto.endpoint, { bucket: BUCKET, table: TABLE });
    clients = motoClients(moto.endpoint);
    asg = new AutoScalingClient({ region: REGION, endpoint: moto.endpoint, credentials });
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials });
    status = new DynamoStatusStore(clients.ddb, { table: TABLE });
    await clients.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'agent/crash/gq-agent.mjs', Body: CRASHING_AGENT }));
    const root = mkdtempSync(join(process.env.GQ_TEST_ROOT ?? tmpdir(), 'bootfail-'));
    runtime = await startInstanceRuntime({
      endpoint: moto.endpoint,
      region: REGION,
      rootDir: join(root, 'instances'),
      pollMs: 250,
      graceMs: 3000,
      groups: (name) => name.startsWith(PREFIX),
    });
  });

  afterAll(async () => {
    await runtime?.stop();
    for (const name of ['sha', 'crash']) {
      await asg
        ?.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: `${PREFIX}${name}`, ForceDelete: true }))
        .catch(() => undefined);
    }
    asg?.destroy();
    ec2?.destroy();
    clients?.destroy();
    await moto?.stop();
  });

  /** A group of one instance (min 0) whose UserData boots the given agent key and sha256. */
  async function group(name: string, agentKey: string, agentSha256: string): Promise<string> {
    const groupName = `${PREFIX}${name}`;
    const userData = renderUserData({
      region: REGION,
      bucket: BUCKET,
      table: TABLE,
      job: JOB,
      instanceType: 't3.micro',
      agentKey,
      agentSha256,
      nodeVersion: process.version, // the image's node (the test's) is used as it is
      nodeKey: 'node/none.tar.gz',
      nodeSha256: '0'.repeat(64),
    });
    await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: groupName,
        LaunchTemplateData: {
          ImageId: 'ami-12c6146b',
          InstanceType: 't3.micro',
          InstanceInitiatedShutdownBehavior: 'terminate',
          UserData: Buffer.from(userData).toString('base64'),
        },
      }),
    );
    await asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: groupName,
        MinSize: 0,
        MaxSize: 2,
        DesiredCapacity: 1,
        AvailabilityZones: [`${REGION}a`],
        LaunchTemplate: { LaunchTemplateName: groupName, Version: '$Latest' },
      }),
    );
    return groupName;
  }

  async function describeGroup(name: string) {
    const out = await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
    return out.AutoScalingGroups![0]!;
  }

  /** The group's one instance boots, fails, and is gone; then the group and the runtime are checked. */
  async function expectLeft(groupName: string): Promise<RuntimeInstance> {
    const rt = runtime!;
    const mine = (list: RuntimeInstance[]) => list.filter((i) => i.group === groupName);
    const [gone] = mine(await rt.waitFor((list) => mine(list).some((i) => i.terminated && !i.alive), 60_000));
    const g = await describeGroup(groupName);
    expect(g.DesiredCapacity).toBe(0); // decremented: Auto Scaling launches no replacement
    expect(g.Instances ?? []).toEqual([]);
    // A few more polls of the runtime: still no replacement booted.
    await new Promise((r) => setTimeout(r, 1000));
    expect(mine(rt.instances())).toHaveLength(1);
    return gone!;
  }

  async function userDataLog(instance: string): Promise<string> {
    const key = `jobs/${JOB}/instances/${instance}/userdata.log`;
    const got = await clients.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return got.Body!.transformToString();
  }

  it('agent download with a sha256 mismatch: BOOT_FAILED recorded, log uploaded, group 1 → 0, no power-off', async () => {
    const t0 = Date.now();
    const name = await group('sha', 'agent/crash/gq-agent.mjs', 'f'.repeat(64));
    const instance = await expectLeft(name);
    console.log(`sha256 mismatch: booted, failed and left its group in ${Date.now() - t0} ms`);

    const item = (await status.listInstances(JOB)).find((i) => i.instance === instance.id);
    expect(item).toMatchObject({ job: JOB, instance: instance.id, instanceType: 't3.micro', state: 'BOOT_FAILED' });
    expect(item!.detail).toBe(
      `agent download failed: GET s3://${BUCKET}/agent/crash/gq-agent.mjs: sha256 mismatch, ` +
        `expected ${'f'.repeat(64)}, got ${sha256(CRASHING_AGENT)}`,
    );
    expect(await userDataLog(instance.id)).toMatch(/sha256 mismatch/);
    expect(runtime!.shutdownAttempts()).toEqual([]);
    expect(runtime!.errors).toEqual([]);
  });

  it('agent exits 1 at start: BOOT_FAILED recorded, log uploaded, group 1 → 0, no power-off', async () => {
    const t0 = Date.now();
    const name = await group('crash', 'agent/crash/gq-agent.mjs', sha256(CRASHING_AGENT));
    const instance = await expectLeft(name);
    console.log(`crashing agent: booted, failed and left its group in ${Date.now() - t0} ms`);

    const item = (await status.listInstances(JOB)).find((i) => i.instance === instance.id);
    // systemd started it again until its start limit, then gq-agent-failed reported it.
    expect(item).toMatchObject({ state: 'BOOT_FAILED', detail: 'gq-agent exited with status 1, 4 starts in a row', instanceType: 't3.micro' });
    expect(runtime!.machine(instance.id).calls().filter((c) => /gq-agent.service: main process exited, status=1/.test(c))).toHaveLength(4);
    const log = await userDataLog(instance.id);
    expect(log).toMatch(/gq-agent: internal error \(stub: crashes at start\)/);
    expect(log).toMatch(/gq-agent exited with status 1/);
    expect(runtime!.shutdownAttempts()).toEqual([]);
    expect(runtime!.errors).toEqual([]);
  });
});
