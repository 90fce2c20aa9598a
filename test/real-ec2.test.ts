/**
 * The real-EC2 code paths of the UserData and the agent, run: the instance runtime in real-EC2 mode
 * (test/support/real-ec2.ts) sets NO endpoint override, so the instances use the regional HTTPS
 * endpoints (virtual-hosted S3 URLs included), the metadata service at 169.254.169.254 and power
 * off when done, exactly as on EC2; a TLS proxy with a test CA, curl's connect-to and a Node
 * --import hook only make those connections land on moto and the metadata emulator.
 *  - a job submitted with the real `gq` runs on such instances, which then power themselves off;
 *  - a boot that fails (agent sha256 mismatch) records BOOT_FAILED, leaves its group and powers off.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateAutoScalingGroupCommand, DeleteAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand } from '@aws-sdk/client-ec2';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderUserData } from '../packages/cli/src/userdata.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, jobFile, submit, task } from './support/aws-faults.js';
import { describeAws } from './support/moto.js';
import { opensslAvailable } from './support/real-ec2.js';

const REGION = 'us-east-1';
// The test CA needs the openssl command; without it these tests fail (they are never skipped
// quietly): install openssl.
describeAws('real-EC2 code paths (no endpoint override) on moto', () => {
  let h: AwsHarness;

  beforeAll(async () => {
    if (!opensslAvailable()) throw new Error('the real-EC2 network needs the openssl command for its test CA: install openssl');
    h = (await startAwsHarness('real-ec2', { jobPrefix: 're-', realEc2: true }))!;
  }, 180_000);

  afterAll(async () => {
    await h?.backend.clients.autoscaling
      .send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: 'gq-re-badsha', ForceDelete: true }))
      .catch(() => undefined);
    await h?.stop();
  });

  it('boots from the bucket over regional HTTPS endpoints, runs the job, and powers off when done', async () => {
    const s = awsScenario(h, 're-job', 'every-task');
    const r = await submit(s, jobFile(s, [1, 2].map((n) => task(s, n))), ['--max-instances', '1', '--wait', '--json']);
    expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
    expect(JSON.parse(r.stdout).counts).toMatchObject({ succeeded: 2, failed: 0 });
    await awsInvariants(s);

    const [inst] = await h.runtime.waitFor((is) => is.some((i) => i.group === 'gq-re-job-t3.micro' && i.poweredOff && !i.alive), 60_000);
    const i = inst!;
    const console = h.runtime.consoleLog(i.id);
    expect(console).toMatch(/Node.js v\d+\.\d+\.\d+ from the gq bucket/);
    expect(console).toMatch(/powering off \(the instance terminates\)/);
    expect(console).not.toMatch(/not on real EC2/);
    expect(h.runtime.shutdownAttempts()).toContain('shutdown -h now');
    // Exactly the hosts an instance in us-east-1 talks to: virtual-hosted S3, regional APIs.
    const hosts = new Set(h.runtime.network!.hosts);
    expect(hosts).toContain(`${h.bucket}.s3.${REGION}.amazonaws.com`); // curl (UserData) and the SDK (agent)
    for (const svc of ['sqs', 'dynamodb', 'autoscaling']) expect(hosts).toContain(`${svc}.${REGION}.amazonaws.com`);
    for (const host of hosts) expect(host).toMatch(/\.us-east-1\.amazonaws\.com$/);
    // The metadata service was reached at its EC2 address (the emulator saw IMDSv2 only).
    const imds = h.runtime.imds(i.id);
    expect(imds.requests.some((q) => q.path === '/latest/meta-data/iam/security-credentials/')).toBe(true);
    expect(imds.requests.filter((q) => q.method === 'GET').every((q) => q.token)).toBe(true);
  }, 240_000);

  it('a failed boot records BOOT_FAILED, leaves its group and powers off', async () => {
    const agent = 'console.log("never run")\n';
    await h.backend.clients.s3.send(new PutObjectCommand({ Bucket: h.bucket, Key: 'agent/bad/gq-agent.mjs', Body: agent }));
    const sha = createHash('sha256').update(agent).digest('hex');
    const name = 'gq-re-badsha';
    const userData = renderUserData({
      region: REGION,
      bucket: h.bucket,
      table: h.table,
      job: 're-badsha',
      instanceType: 't3.micro',
      agentKey: 'agent/bad/gq-agent.mjs',
      agentSha256: sha.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      nodeVersion: process.version,
      nodeKey: 'node/none.tar.gz',
      nodeSha256: '0'.repeat(64),
    });
    await h.backend.clients.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: name,
        LaunchTemplateData: { ImageId: 'ami-12c6146b', InstanceType: 't3.micro', InstanceInitiatedShutdownBehavior: 'terminate', UserData: Buffer.from(userData).toString('base64') },
      }),
    );
    await h.backend.clients.autoscaling.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: name,
        MinSize: 0,
        MaxSize: 1,
        DesiredCapacity: 1,
        AvailabilityZones: [`${REGION}a`],
        LaunchTemplate: { LaunchTemplateName: name, Version: '$Latest' },
      }),
    );
    const list = await h.runtime.waitFor((is) => is.some((i) => i.group === name && i.poweredOff && !i.alive), 60_000);
    const i = list.find((x) => x.group === name)!;
    // (Its UserData did not get to exit: the power-off killed it.)
    const item = (await h.backend.status.listInstances('re-badsha')).find((x) => x.instance === i.id);
    expect(item).toMatchObject({ state: 'BOOT_FAILED' });
    expect(item!.detail).toMatch(/^agent download failed: GET s3:\/\/.*: sha256 mismatch/);
    const g = (await h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
    expect(g.DesiredCapacity).toBe(0);
    const log = readFileSync(join(i.home, 'gq', 'userdata.log'), 'utf8');
    expect(log).toMatch(/failure recorded/);
    expect(log).toMatch(/left the Auto Scaling group/);
    expect(log).toMatch(/powering off/);
    expect(h.runtime.machine(i.id).calls()).toContain('shutdown -h now');
  }, 120_000);
});
