/**
 * The Gurobi licence and the per-job IAM role on "AWS" (moto), through the real CLI, without
 * instances (no group of these jobs is booted: nothing runs, so every step is quick):
 *
 *  - `gq submit --license` stores the licence as the item JOB#<job> / SECRET#licence with
 *    `expiresAt` (epoch seconds, the table's TTL attribute) 30 days ahead, never in S3; and
 *    creates the job's role (path /gq/<stack>/, tag gq-job, the stack's boundary and agent
 *    policy, EC2 trust) and instance profile, which the launch templates name.
 *  - the next gq command that sees the job finished (here: cancelled) deletes the licence;
 *  - `gq clean` deletes the licence, the role and the profile;
 *  - a licence past its expiresAt is not read even before DynamoDB's TTL removes it;
 *  - `gq retry --license` on a job submitted without one is refused and changes nothing;
 *  - a role of the job role's name that gq did not make is never used or changed;
 *  - with `gq setup --public-ipv4 none` the launch templates ask for no public IPv4 address.
 * The last agent's deletion runs in test/security.test.ts (agents that finish a licensed job).
 * That only the job's own instances can read the licence is proved by test/iam-isolation.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateRoleCommand, GetInstanceProfileCommand, GetRoleCommand, IAMClient, ListAttachedRolePoliciesCommand } from '@aws-sdk/client-iam';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { gq, testHome } from './support/cli.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { describeAws } from './support/moto.js';
import { readStackOutputs, type StackOutputs } from '../packages/cli/src/aws/stack.js';
import { DynamoSecretStore, LICENCE_SK } from '../packages/common/src/aws/secrets.js';
import { LICENCE_LIFETIME_SECONDS } from '../packages/cli/src/commands/submit.js';


const LICENCE = 'WLSACCESSID=lifecycle-0000\nWLSSECRET=lifecycle-secret-1111\nLICENSEID=2000001\n';

describeAws('licence and job role lifecycle on moto', () => {
  let h: AwsHarness;
  let work: string;
  let out: StackOutputs;
  let iam: IAMClient;

  const run = (args: string[]) => gq(args, h.env, { cwd: work, timeoutMs: 90_000 });
  const licenceItem = async (job: string) =>
    (await h.backend.clients.dynamodb.send(new GetItemCommand({ TableName: h.table, Key: { pk: { S: `JOB#${job}` }, sk: { S: LICENCE_SK } }, ConsistentRead: true }))).Item;
  const roleName = (job: string) => `gq-${job}-us-east-1`;

  beforeAll(async () => {
    // jobPrefix matches none of these jobs: no instance is booted.
    h = (await startAwsHarness('licence-lifecycle', { jobPrefix: 'never-booted-' }))!;
    work = testHome('licence-work');
    mkdirSync(join(work, 'code'), { recursive: true });
    writeFileSync(join(work, 'code', 'run.sh'), 'echo hi > results.csv\n');
    writeFileSync(join(work, 'gurobi.lic'), LICENCE, { mode: 0o600 });
    writeFileSync(join(work, 'jobs.csv'), 'instance_type,command\nt3.micro,bash run.sh\nt3.small,bash run.sh\n');
    const cfn = new CloudFormationClient({ region: 'us-east-1', endpoint: h.moto.endpoint });
    out = await readStackOutputs({ cfn, stackName: String(h.env.GQ_STACK) });
    cfn.destroy();
    iam = new IAMClient({ region: 'us-east-1', endpoint: h.moto.endpoint });
  }, 180_000);

  afterAll(async () => {
    iam?.destroy();
    await h?.stop();
  });

  it('submit stores the licence in the job partition with expiresAt, and makes the job role the templates use', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await run(['submit', 'jobs.csv', '--code', 'code', '--license', 'gurobi.lic', '--name', 'lic-a']);
    expect(r.code, r.stderr).toBe(0);
    const item = await licenceItem('lic-a');
    expect(item?.value?.S).toBe(LICENCE);
    const expiresAt = Number(item?.expiresAt?.N);
    expect(expiresAt).toBeGreaterThanOrEqual(before + LICENCE_LIFETIME_SECONDS);
    expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + LICENCE_LIFETIME_SECONDS);
    const objects = await h.backend.clients.s3.send(new ListObjectsV2Command({ Bucket: h.bucket, Prefix: 'jobs/lic-a/' }));
    expect((objects.Contents ?? []).map((o) => o.Key).filter((k) => k?.includes('secret'))).toEqual([]);

    const role = (await iam.send(new GetRoleCommand({ RoleName: roleName('lic-a') }))).Role!;
    expect(role.Path).toBe(out.jobRolePath);
    expect(role.Tags).toContainEqual({ Key: 'gq-job', Value: 'lic-a' });
    expect(role.PermissionsBoundary?.PermissionsBoundaryArn).toBe(out.jobRoleBoundaryArn);
    expect(JSON.parse(decodeURIComponent(role.AssumeRolePolicyDocument!)).Statement).toEqual([
      { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
    const attached = (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName('lic-a') }))).AttachedPolicies ?? [];
    expect(attached.map((p) => p.PolicyArn)).toEqual([out.jobAgentPolicyArn]);
    const profile = (await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: roleName('lic-a') }))).InstanceProfile!;
    expect(profile.Roles?.map((x) => x.RoleName)).toEqual([roleName('lic-a')]);

    const ec2 = h.backend.clients.ec2;
    const templates = (await ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: ['lic-a'] }] }))).LaunchTemplates ?? [];
    expect(templates).toHaveLength(2);
    for (const t of templates) {
      const v = (await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: t.LaunchTemplateId }))).LaunchTemplateVersions![0]!;
      expect(v.LaunchTemplateData?.IamInstanceProfile?.Arn).toBe(profile.Arn);
    }

    // Submitting again (a resumed submit) reuses the same role and profile.
    const again = await run(['submit', 'jobs.csv', '--code', 'code', '--license', 'gurobi.lic', '--name', 'lic-a']);
    expect(again.code, again.stderr).toBe(0);
    expect((await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: roleName('lic-a') }))).InstanceProfile?.Arn).toBe(profile.Arn);
  });

  it('the next gq command that sees the job finished deletes its licence', async () => {
    expect((await run(['cancel', 'lic-a'])).code).toBe(0);
    expect(await licenceItem('lic-a')).toBeDefined(); // cancel itself does not look at it
    const st = await run(['status', 'lic-a']);
    expect(st.code, st.stderr).toBe(0);
    expect(await licenceItem('lic-a')).toBeUndefined();
  });

  it('gq clean deletes the licence, the job role and its instance profile', async () => {
    expect((await run(['submit', 'jobs.csv', '--code', 'code', '--license', 'gurobi.lic', '--name', 'lic-b'])).code).toBe(0);
    expect(await licenceItem('lic-b')).toBeDefined();
    const r = await run(['clean', 'lic-b', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(await licenceItem('lic-b')).toBeUndefined();
    await expect(iam.send(new GetRoleCommand({ RoleName: roleName('lic-b') }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
    await expect(iam.send(new GetInstanceProfileCommand({ InstanceProfileName: roleName('lic-b') }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
    // Clean again: nothing left to delete is fine.
    expect((await run(['clean', 'lic-b', '--force'])).code).toBe(0);
  });

  it('a licence past its expiresAt is not read, even before the TTL removes it', async () => {
    const store = new DynamoSecretStore(h.backend.clients.ddb, { table: h.table });
    const past = Math.floor(Date.now() / 1000) - 10;
    await h.backend.clients.dynamodb.send(
      new PutItemCommand({
        TableName: h.table,
        Item: { pk: { S: 'JOB#lic-old' }, sk: { S: LICENCE_SK }, kind: { S: 'secret' }, value: { S: LICENCE }, expiresAt: { N: String(past) } },
      }),
    );
    expect(await store.getLicence('lic-old')).toBeUndefined();
    await store.putLicence('lic-old', LICENCE, past + 3600);
    expect(await store.getLicence('lic-old')).toBe(LICENCE);
    await store.deleteLicence('lic-old');
    expect(await store.getLicence('lic-old')).toBeUndefined();
    await store.deleteLicence('lic-old'); // nothing to delete is fine
  });

  it('gq retry --license on a job submitted without a licence is refused and stores nothing', async () => {
    expect((await run(['submit', 'jobs.csv', '--code', 'code', '--name', 'lic-c'])).code).toBe(0);
    const r = await run(['retry', 'lic-c', '--failed', '--license', 'gurobi.lic']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/submitted without a licence/);
    expect(r.stderr).not.toContain('lifecycle-secret-1111');
    expect(await licenceItem('lic-c')).toBeUndefined();
  });

  it('never takes over a role of the same name that is not the job role (another path): says so', async () => {
    await iam.send(new CreateRoleCommand({ RoleName: roleName('lic-x'), Path: '/', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
    const r = await run(['submit', 'jobs.csv', '--code', 'code', '--name', 'lic-x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/IAM role gq-lic-x-us-east-1 exists but is not gq's role for job lic-x/);
    const role = (await iam.send(new GetRoleCommand({ RoleName: roleName('lic-x') }))).Role!;
    expect(role.Path).toBe('/');
    expect((await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName('lic-x') }))).AttachedPolicies ?? []).toEqual([]);
  });

  it('on a stack set up with --public-ipv4 none, the launch templates ask for no public IPv4 address', async () => {
    // A second stack (moto's CloudFormation cannot update a stack's parameters).
    const env = { ...h.env, GQ_STACK: `${String(h.env.GQ_STACK)}-private` };
    const setup = await gq(['setup', '--public-ipv4', 'none'], env, { cwd: work, timeoutMs: 120_000 });
    expect(setup.code, setup.stderr).toBe(0);
    const sub = await gq(['submit', 'jobs.csv', '--code', 'code', '--name', 'lic-p'], env, { cwd: work, timeoutMs: 90_000 });
    expect(sub.code, sub.stderr).toBe(0);
    const ec2 = h.backend.clients.ec2;
    const templates = (await ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: ['lic-p'] }] }))).LaunchTemplates ?? [];
    expect(templates).toHaveLength(2);
    for (const t of templates) {
      const v = (await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: t.LaunchTemplateId }))).LaunchTemplateVersions![0]!;
      expect(v.LaunchTemplateData?.NetworkInterfaces).toMatchObject([{ DeviceIndex: 0, AssociatePublicIpAddress: false }]);
      expect(v.LaunchTemplateData?.NetworkInterfaces?.[0]?.Groups).toHaveLength(1);
    }
  });
});
