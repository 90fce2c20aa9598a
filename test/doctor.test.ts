/**
 * `gq doctor` as a user runs it (the built CLI as a subprocess) against moto: each problem that
 * would stop a first job is reported with its fix, before anything is launched.
 *
 * moto models DescribeRouteTables (with the main table), DescribeVpcEndpoints, MapPublicIpOnLaunch,
 * DescribeInstanceTypes and DescribeInstanceTypeOfferings (a snapshot of AWS's offerings per
 * zone), and AWS's public Amazon Linux SSM parameters. One difference from AWS is made up for
 * here: moto's default VPC has no route to an internet gateway (AWS's has 0.0.0.0/0 → igw), so
 * the "healthy" account below adds it, as AWS would have it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  AssociateRouteTableCommand,
  DescribeRouteTablesCommand,
  DescribeVpcsCommand,
  ModifySubnetAttributeCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gq, gqEnv, testHome, type CliResult } from './support/cli.js';
import { describeAws, motoClients, startMoto, type Moto } from './support/moto.js';
import { startNodeMirror, type NodeMirror } from './support/node-mirror.mjs';
import { PINNED_NODE_VERSION } from '../packages/cli/src/userdata.js';


/** A secret long enough for gq to register it for redaction: it must never be printed. */
const SECRET = 'gq-doctor-secret-4c1f9a7e2b6d8053';

const lines = (r: CliResult, status: string, name: string) =>
  r.stdout.split('\n').filter((l) => l.startsWith(status.padEnd(4) + '  ' + name + ':'));

/** The fix line printed under the first line matching `re`. */
function fixAfter(r: CliResult, re: RegExp): string | undefined {
  const all = r.stdout.split('\n');
  const i = all.findIndex((l) => re.test(l));
  return i >= 0 && all[i + 1]?.trim().startsWith('fix:') ? all[i + 1]!.trim() : undefined;
}

describeAws('gq doctor (moto)', () => {
  let moto: Moto;
  let ec2: EC2Client;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let arm64Ami: string;
  let mirror: NodeMirror | undefined;
  const healthy = `gq-doctor-ok-${process.pid}`;
  const broken = `gq-doctor-noroute-${process.pid}`;
  let routeless: string;
  let routed: string;

  const doctor = (args: string[], extra: Record<string, string> = {}) => gq(['doctor', ...args], { ...env, ...extra }, { timeoutMs: 120_000 });

  beforeAll(async () => {
    moto = (await startMoto())!;
    ec2 = motoClients(moto.endpoint).ec2;
    home = testHome('doctor');
    env = gqEnv(home, {
      GQ_BACKEND: 'aws',
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_REGION: 'us-east-1',
      AWS_CONFIG_FILE: join(home, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    // gq setup stores the instances' Node.js build: from a local stand-in for nodejs.org.
    mirror = await startNodeMirror(PINNED_NODE_VERSION);
    env.GQ_NODE_MIRROR = mirror.url;
    const ssm = new SSMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    arm64Ami = (await ssm.send(new GetParameterCommand({ Name: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64' }))).Parameter!.Value!;
    ssm.destroy();

    // The default VPC as AWS makes it: its main route table sends 0.0.0.0/0 to an internet gateway.
    const vpc = (await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }))).Vpcs![0]!.VpcId!;
    const main = (await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }, { Name: 'association.main', Values: ['true'] }] })))
      .RouteTables![0]!.RouteTableId!;
    const igw = (await ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!;
    await ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpc }));
    await ec2.send(new CreateRouteCommand({ RouteTableId: main, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw }));
    const okSetup = await gq(['setup', '--stack', healthy], env, { timeoutMs: 120_000 });
    expect(okSetup.code, okSetup.stderr).toBe(0);

    // A VPC of two subnets: one routed to an internet gateway with public IPs, one left on the
    // main route table, which has no route out and no endpoints.
    const v2 = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }))).Vpc!.VpcId!;
    routed = (await ec2.send(new CreateSubnetCommand({ VpcId: v2, CidrBlock: '10.42.1.0/24', AvailabilityZone: 'us-east-1a' }))).Subnet!.SubnetId!;
    routeless = (await ec2.send(new CreateSubnetCommand({ VpcId: v2, CidrBlock: '10.42.2.0/24', AvailabilityZone: 'us-east-1b' }))).Subnet!.SubnetId!;
    const igw2 = (await ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!;
    await ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw2, VpcId: v2 }));
    const rt = (await ec2.send(new CreateRouteTableCommand({ VpcId: v2 }))).RouteTable!.RouteTableId!;
    await ec2.send(new CreateRouteCommand({ RouteTableId: rt, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw2 }));
    await ec2.send(new AssociateRouteTableCommand({ RouteTableId: rt, SubnetId: routed }));
    await ec2.send(new ModifySubnetAttributeCommand({ SubnetId: routed, MapPublicIpOnLaunch: { Value: true } }));
    const badSetup = await gq(['setup', '--stack', broken, '--vpc-id', v2], env, { timeoutMs: 120_000 });
    expect(badSetup.code, badSetup.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await mirror?.close();
    ec2?.destroy();
    await moto?.stop();
  });

  it('a healthy account passes: every check ok (the vCPU quota cannot be read on moto)', async () => {
    const r = await doctor(['--stack', healthy]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of ['region', 'credentials', 'stack', 'template version', 'instance types', 'AMI']) {
      expect(lines(r, 'ok', name), `${name}\n${r.stdout}`).toHaveLength(1);
    }
    expect(lines(r, 'ok', 'network').length).toBeGreaterThan(1); // one line per subnet of the default VPC
    expect(r.stdout).not.toMatch(/^FAIL/m);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stdout).toMatch(/^ok\s+AMI: m5\.large → ami-\S+ al2023-\S+ \(x86_64; SSM \/aws\/service\/ami-amazon-linux-latest\/al2023-ami-kernel-default-x86_64\)/m);
  });

  it('a missing stack: FAIL with "run gq setup", and the checks that need it skipped', async () => {
    const r = await doctor(['--stack', 'gq-never-made']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+stack: No gq stack "gq-never-made" in us-east-1/m);
    expect(fixAfter(r, /^FAIL\s+stack:/)).toBe('fix: run `gq setup --region us-east-1 --stack gq-never-made`');
    expect(r.stdout).toMatch(/^skip\s+network: needs the stack/m);
    expect(r.stdout).toMatch(/^skip\s+offerings: needs the stack/m);
  });

  it('a subnet without a route: FAIL naming the subnet, its (main) route table and each fix; the routed one is ok', async () => {
    const r = await doctor(["--stack", broken]);
    expect(r.code).toBe(1);
    const fail = lines(r, 'FAIL', 'network');
    expect(fail, r.stdout).toHaveLength(1);
    expect(fail[0]).toContain(routeless);
    expect(fail[0]).toMatch(/\(the main route table\): no route to the internet and no VPC endpoint for s3, dynamodb, sqs, autoscaling, ec2, sts/);
    const fix = fixAfter(r, new RegExp(`^FAIL\\s+network: ${routeless}`))!;
    expect(fix).toMatch(/add a route 0\.0\.0\.0\/0 to an internet gateway/);
    expect(fix).toMatch(/NAT gateway/);
    expect(fix).toMatch(/gateway endpoints for s3, dynamodb/);
    expect(lines(r, 'ok', 'network').join('\n')).toContain(`${routed} (us-east-1a): internet gateway`);
  });

  it('an AMI of the wrong architecture: FAIL for that type, with the fix', async () => {
    const r = await doctor(['--stack', healthy, '--instance-type', 'm5.large'], { GQ_AMI: arm64Ami });
    expect(r.code).toBe(1);
    const fail = lines(r, 'FAIL', 'AMI');
    expect(fail, r.stdout).toHaveLength(1);
    expect(fail[0]).toContain(`AMI ${arm64Ami} is built for arm64, but m5.large runs x86_64`);
    expect(fixAfter(r, /^FAIL\s+AMI:/)).toMatch(/Set `ami` for m5\.large to an image for x86_64/);
  });

  it('checks every instance type of a job file (positional or --job-file): AMI per architecture and offerings', async () => {
    const jobfile = join(home, 'jobdetails.csv');
    writeFileSync(jobfile, 'instance_type,command\nm5.large,echo a\nc7g.large,echo b\nm5.large,echo c\n');
    for (const args of [[jobfile], ['--job-file', jobfile]]) {
      const r = await doctor(['--stack', healthy, ...args]);
      expect(r.stdout).toMatch(/^ok\s+instance types: c7g\.large \(arm64, 2 vCPUs\), m5\.large \(x86_64, 2 vCPUs\)/m);
      expect(r.stdout).toMatch(/^ok\s+AMI: c7g\.large → \S+ \S+ \(arm64;/m);
      expect(r.stdout).toMatch(/^ok\s+AMI: m5\.large → \S+ \S+ \(x86_64;/m);
      // moto's snapshot of AWS: m5.large is not offered in us-east-1e, one of the default VPC's zones.
      expect(r.stdout).toMatch(/^warn\s+offerings: m5\.large is offered in .* but not in us-east-1e/m);
      expect(r.stdout).toMatch(/^(ok|warn)\s+offerings: c7g\.large is offered in/m);
      expect(r.code, r.stdout).toBe(0);
    }
  });

  it('an instance type EC2 does not have, and a bad job file', async () => {
    const r = await doctor(['--stack', healthy, '--instance-type', 'm5.huge']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+instance types: EC2 does not offer m5\.huge in us-east-1/m);
    const bad = join(home, 'bad.csv');
    writeFileSync(bad, 'instance_type,command\nm5.large\n');
    const b = await doctor([bad]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^gq: /m);
    expect(b.stdout).toBe('');
    const both = await doctor([bad, '--instance-type', 'm5.large']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/^gq: Give a job file or --instance-type, not both\./m);
  });

  it('no region anywhere: FAIL region with what to set, everything else skipped', async () => {
    const noRegion = { ...env, AWS_REGION: '', AWS_DEFAULT_REGION: '' };
    const r = await gq(['doctor', '--stack', healthy], noRegion, { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+region: no AWS region is set/m);
    expect(fixAfter(r, /^FAIL\s+region:/)).toMatch(/export AWS_REGION=us-east-1/);
    expect(r.stdout).toMatch(/^skip\s+credentials: needs a region/m);
  });
});
