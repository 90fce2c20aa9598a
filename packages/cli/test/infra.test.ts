/**
 * infra/gq.yaml and the stack commands.
 *
 * 1. The template itself, as text and as parsed YAML (moto's CloudFormation silently skips
 *    BucketPolicy and ignores PublicAccessBlock, PITR, TTL and security-group egress, so those
 *    are checked here, not by deploying): cfn-lint, least privilege, no ingress, encryption.
 * 2. Pure helpers of stack.ts and doctor.ts.
 * 3. Against a moto_server started by this file (never real AWS): deploy, outputs that name real
 *    resources, a second deploy that changes nothing, `gq setup`, and `gq doctor`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateRouteCommand,
  DescribeImagesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
} from '@aws-sdk/client-ec2';
import type { Stack } from '@aws-sdk/client-cloudformation';
import { configSchema, createLogger, type Config } from '@gq/common';
import { FAILED_INDEX, FAILED_PK, FAILED_SK, jobPk } from '@gq/common/aws/index';
import {
  deployStack,
  destroySetupClients,
  findDefaultVpc,
  makeSetupClients,
  outputsFromStack,
  readStackOutputs,
  updateParameters,
} from '../src/aws/stack.js';
import { credentialProblem, isNoUpdatesError, isStackMissingError } from '../src/aws/stack-errors.js';
import { parseTemplate, readTemplate, templateCandidates, templatePath, templateVersion, type CfnTemplate } from '../src/aws/stack-template.js';
import { formatCheck, runDoctor } from '../src/commands/doctor.js';
import { describeAws, startMoto, type Moto } from '../../../test/support/moto.js';
import { EC2_TRUST_POLICY } from '../src/aws/job-role.js';
import { runSetup, setupParameters } from '../src/commands/setup.js';
import { PINNED_NODE_VERSION } from '../src/userdata.js';
import { startNodeMirror } from '../../../test/support/node-mirror.mjs';
import type { CommandContext } from '../src/context.js';

const TEMPLATE_FILE = fileURLToPath(new URL('../../../infra/gq.yaml', import.meta.url));
const text = readFileSync(TEMPLATE_FILE, 'utf8');
const tpl: CfnTemplate = parseTemplate(text);

// ---------------------------------------------------------------------------------------------
// Helpers over the parsed template

type Json = unknown;
interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Json;
  Action?: string | string[];
  NotAction?: Json;
  Resource?: Json;
  NotResource?: Json;
  Condition?: Record<string, Record<string, Json>>;
}
interface PolicyDoc {
  where: string;
  kind: 'identity' | 'trust' | 'bucket' | 'key' | 'other';
  statements: Statement[];
}

const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every policy document in the template, wherever it is. */
function policyDocs(t: CfnTemplate): PolicyDoc[] {
  const docs: PolicyDoc[] = [];
  for (const [name, res] of Object.entries(t.Resources)) {
    const walk = (node: Json, path: string): void => {
      if (!node || typeof node !== 'object') return;
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}[${i}]`));
      for (const [k, v] of Object.entries(node as Record<string, Json>)) {
        if (k === 'PolicyDocument' || k === 'KeyPolicy' || k === 'AssumeRolePolicyDocument') {
          const kind =
            k === 'AssumeRolePolicyDocument'
              ? 'trust'
              : k === 'KeyPolicy'
                ? 'key'
                : res.Type === 'AWS::S3::BucketPolicy'
                  ? 'bucket'
                  : res.Type.startsWith('AWS::IAM::')
                    ? 'identity'
                    : 'other';
          docs.push({ where: `${name}${path}.${k}`, kind, statements: asArray((v as { Statement: Statement | Statement[] }).Statement) });
        } else walk(v, `${path}.${k}`);
      }
    };
    walk(res.Properties, '');
  }
  return docs;
}

/** Every key anywhere in the template (to look for things that must not exist at all). */
function allKeys(node: Json, out: string[] = []): string[] {
  if (node && typeof node === 'object') {
    if (Array.isArray(node)) node.forEach((n) => allKeys(n, out));
    else
      for (const [k, v] of Object.entries(node as Record<string, Json>)) {
        out.push(k);
        allKeys(v, out);
      }
  }
  return out;
}

/** The text of a Fn::Sub (string form) or a plain string; '' otherwise. */
function subText(v: Json): string {
  if (typeof v === 'string') return v;
  const s = (v as { 'Fn::Sub'?: Json })?.['Fn::Sub'];
  if (typeof s === 'string') return s;
  if (Array.isArray(s) && typeof s[0] === 'string') return s[0];
  return JSON.stringify(v);
}

/** Actions that AWS does not allow to scope to a resource: the only ones that may have Resource "*". */
const RESOURCE_STAR_ALLOWED = new Set([
  'ec2:DescribeTags',
  'ec2:DescribeInstances',
  'ec2:DescribeSpotPriceHistory', // the agent: the price a Spot instance runs at (issue 10)
  'ec2:DescribeImages',
  'ec2:DescribeInstanceTypes',
  'ec2:DescribeInstanceTypeOfferings',
  'ec2:DescribeLaunchTemplates',
  'ec2:DescribeSecurityGroups',
  'ec2:DescribeSubnets',
  'ec2:DescribeVpcs',
  'ec2:DescribeRouteTables',
  'ec2:DescribeVpcEndpoints',
  'autoscaling:DescribeAutoScalingGroups',
  'autoscaling:DescribeScalingActivities',
  'servicequotas:GetServiceQuota',
  'servicequotas:GetAWSDefaultServiceQuota',
]);

const docs = policyDocs(tpl);
const identity = docs.filter((d) => d.kind === 'identity');
/** The agents' policy: what each per-job role is given (the test below checks its scoping). */
const agentDoc = identity.find((d) => d.where.startsWith('JobAgentPolicy'))!;
const boundaryDoc = identity.find((d) => d.where.startsWith('JobRoleBoundary'))!;
const userDoc = identity.find((d) => d.where.startsWith('UserPolicy'))!;
const allowStatements = agentDoc.statements.filter((s) => s.Effect === 'Allow');
const userAllows = userDoc.statements.filter((s) => s.Effect === 'Allow');
const bySid = (d: PolicyDoc, sid: string): Statement => {
  const st = d.statements.find((x) => x.Sid === sid);
  if (!st) throw new Error(`${d.where}: no statement ${sid}`);
  return st;
};
const resourcesOf = (s: Statement): Json[] => asArray(s.Resource as Json | Json[]);
const actionsOf = (s: Statement): string[] => asArray(s.Action);
const statementsWith = (action: string): Statement[] => allowStatements.filter((s) => actionsOf(s).includes(action));
const statementsIn = (list: Statement[], action: string): Statement[] => list.filter((s) => actionsOf(s).includes(action));

// ---------------------------------------------------------------------------------------------

describe('infra/gq.yaml: lint and structure', () => {
  it('passes cfn-lint with no errors, warnings or informational findings', (ctx) => {
    const probe = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      // CI must lint the template: there a missing cfn-lint fails the test instead of skipping it.
      if (process.env.GQ_REQUIRE_AWS_TESTS === '1') throw new Error('cfn-lint is not on PATH (pip install cfn-lint); GQ_REQUIRE_AWS_TESTS=1 requires it');
      console.warn(`\n${'!'.repeat(90)}\n!! SKIPPED: cfn-lint is not on PATH (pip install cfn-lint); infra/gq.yaml NOT linted\n${'!'.repeat(90)}\n`);
      ctx.skip();
    }
    const r = spawnSync('cfn-lint', ['--include-checks', 'I', '--', TEMPLATE_FILE], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is the file readTemplate() ships, from source and from the compiled dist/aws/stack.js', () => {
    expect(templatePath()).toBe(TEMPLATE_FILE);
    expect(readTemplate()).toBe(text);
    expect(templateCandidates()[0]).toBe(TEMPLATE_FILE);
    // The compiled module sits at packages/cli/dist/aws/stack.js: same depth as src/aws.
    const dist = pathToFileURL(fileURLToPath(new URL('../dist/aws/stack.js', import.meta.url)));
    expect(fileURLToPath(new URL('../../../../infra/gq.yaml', dist))).toBe(TEMPLATE_FILE);
  });

  it('fits in a CloudFormation TemplateBody (51,200 bytes)', () => {
    expect(Buffer.byteLength(text)).toBeLessThan(51_200);
  });

  it('parses CloudFormation short-form tags into their long forms', () => {
    const t = parseTemplate(
      [
        'Resources:',
        '  A:',
        '    Type: X',
        '    Properties:',
        "      a: !Ref B",
        "      b: !GetAtt B.Arn",
        "      c: !Sub 'x-${B}'",
        "      d: !Sub ['${x}', {x: !Ref C}]",
        "      e: !If [Cond, !Select [0, !Split [',', !Join ['', [a, b]]]], !Ref AWS::NoValue]",
        "      f: !Not [!Equals [!Ref P, '']]",
      ].join('\n'),
    );
    expect(t.Resources.A!.Properties).toEqual({
      a: { Ref: 'B' },
      b: { 'Fn::GetAtt': ['B', 'Arn'] },
      c: { 'Fn::Sub': 'x-${B}' },
      d: { 'Fn::Sub': ['${x}', { x: { Ref: 'C' } }] },
      e: { 'Fn::If': ['Cond', { 'Fn::Select': [0, { 'Fn::Split': [',', { 'Fn::Join': ['', ['a', 'b']] }] }] }, { Ref: 'AWS::NoValue' }] },
      f: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'P' }, ''] }] },
    });
  });

  it('deploys with no parameters (every parameter has a default)', () => {
    for (const [name, p] of Object.entries(tpl.Parameters ?? {})) {
      expect(p.Default, `parameter ${name}`).toBeDefined();
    }
  });

  it('has the outputs gq reads, and a literal TemplateVersion', () => {
    for (const k of ['BucketName', 'TableName', 'JobAgentPolicyArn', 'JobRoleBoundaryArn', 'JobRolePath', 'UserPolicyArn', 'SecurityGroupId', 'KmsKeyArn', 'TemplateVersion']) {
      expect(tpl.Outputs?.[k], k).toBeDefined();
    }
    expect(templateVersion(text)).toMatch(/^\d+$/);
  });
});

describe('infra/gq.yaml: least privilege', () => {
  it('finds the policies it checks', () => {
    expect(identity.map((d) => d.where.split('.')[0]).sort()).toEqual(['JobAgentPolicy', 'JobRoleBoundary', 'UserPolicy']);
    expect(docs.some((d) => d.kind === 'bucket')).toBe(true);
    expect(docs.some((d) => d.kind === 'key')).toBe(true);
    // No role in the stack: the per-job roles are made by gq submit (job-role.ts).
    expect(docs.filter((d) => d.kind === 'trust')).toEqual([]);
    expect(docs.filter((d) => d.kind === 'other')).toEqual([]);
  });

  it('grants no Action "*" and no "service:*" (wildcards only in Deny statements)', () => {
    for (const d of docs) {
      for (const s of d.statements) {
        expect(s.NotAction, `${d.where} ${s.Sid}: NotAction`).toBeUndefined();
        if (s.Effect !== 'Allow') continue;
        for (const a of actionsOf(s)) {
          expect(a, `${d.where} ${s.Sid}`).not.toBe('*');
          expect(a, `${d.where} ${s.Sid}`).not.toMatch(/^[a-z0-9-]+:\*$/i);
        }
      }
    }
    // Belt and braces over the raw text: an Action: '*' line anywhere would be a grant.
    expect(text).not.toMatch(/Action:\s*['"]?\*['"]?\s*$/m);
  });

  it('has Resource "*" only for actions AWS cannot scope (and in Denies), each with a comment saying why', () => {
    for (const d of identity) {
      for (const s of d.statements) {
        expect(s.NotResource, `${d.where} ${s.Sid}: NotResource`).toBeUndefined();
        if (s.Effect !== 'Allow' || !resourcesOf(s).includes('*')) continue;
        for (const a of actionsOf(s)) expect(RESOURCE_STAR_ALLOWED.has(a), `${s.Sid}: ${a} on Resource "*"`).toBe(true);
        expect(resourcesOf(s)).toEqual(['*']);
      }
    }
    // In a key policy "*" is the only accepted Resource: it means "this key".
    for (const d of docs.filter((x) => x.kind === 'key')) {
      for (const s of d.statements) expect(resourcesOf(s)).toEqual(['*']);
    }
    // Every Resource: '*' line has a comment above it (same statement) saying why.
    const lines = text.split('\n');
    const starLines = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*Resource:\s*'\*'\s*$/.test(l));
    expect(starLines.length).toBeGreaterThanOrEqual(3);
    for (const [, i] of starLines) {
      const above = lines.slice(Math.max(0, i - 40), i);
      const start = above.map((l) => /^\s*- (Sid|Effect):/.test(l)).lastIndexOf(true);
      const block = above.slice(Math.max(0, start - 8));
      expect(block.some((l) => /^\s*#.*Resource "\*"/.test(l)), `no comment explains Resource "*" at line ${i + 1}`).toBe(true);
    }
  });

  it("scopes every agent grant to the role's own job (aws:PrincipalTag/gq-job): queues, items, S3 prefix, groups, instances", () => {
    const JOB = '${aws:PrincipalTag/gq-job}';
    const sqs = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(sqs.length).toBe(1);
    for (const s of sqs) {
      expect(resourcesOf(s).map(subText)).toEqual(['arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:gq-*']);
      // The name pattern alone would let job "a" reach job "a-b": the queue's job tag decides.
      expect(s.Condition?.StringEquals?.['aws:ResourceTag/gq:job']).toBe(JOB);
      for (const a of ['sqs:DeleteQueue', 'sqs:PurgeQueue', 'sqs:CreateQueue', 'sqs:TagQueue', 'sqs:SetQueueAttributes']) expect(actionsOf(s)).not.toContain(a);
    }

    const ddb = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(ddb.length).toBe(1);
    for (const s of ddb) {
      expect(resourcesOf(s)).toEqual([{ 'Fn::GetAtt': ['StatusTable', 'Arn'] }]);
      expect(s.Condition?.['ForAllValues:StringEquals']?.['dynamodb:LeadingKeys']).toEqual([jobPk(JOB)]); // the table's partition key, as aws/status-store/items.ts makes it
      expect(s.Condition?.Null?.['dynamodb:LeadingKeys']).toBe('false');
      for (const a of actionsOf(s)) expect(['dynamodb:DeleteTable', 'dynamodb:Scan', 'dynamodb:UpdateTable', 'dynamodb:BatchWriteItem']).not.toContain(a);
    }

    const s3 = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.length).toBe(2);
    const reads = statementsWith('s3:GetObject').flatMap(resourcesOf).map(subText);
    const writes = statementsWith('s3:PutObject').flatMap(resourcesOf).map(subText);
    // Shared read-only inputs (content-addressed bundles, the agent, the pinned Node.js build)
    // and the job's own script, and its tasks' checkpoints (restored into their next attempt).
    const own = 'jobs/${!aws:PrincipalTag/gq-job}';
    expect(reads.sort()).toEqual(['bundles/*', 'agent/*', 'node/*', `${own}/install.sh`, `${own}/tasks/*/checkpoint.tar.gz`].map((p) => '${ArtifactBucket.Arn}/' + p).sort());
    expect(writes.sort()).toEqual(
      ['jobs/${!aws:PrincipalTag/gq-job}/tasks/*', 'jobs/${!aws:PrincipalTag/gq-job}/instances/*'].map((p) => '${ArtifactBucket.Arn}/' + p).sort(),
    );
    for (const s of s3) {
      for (const a of actionsOf(s)) expect(['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload']).toContain(a);
    }

    const kms = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')));
    expect(kms.length).toBe(1);
    expect(actionsOf(kms[0]!).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(resourcesOf(kms[0]!)).toEqual([{ 'Fn::GetAtt': ['ArtifactKey', 'Arn'] }]);
    expect(subText(kms[0]!.Condition?.StringEquals?.['kms:ViaService'])).toBe('s3.${AWS::Region}.${AWS::URLSuffix}');

    const asg = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('autoscaling:') && a !== 'autoscaling:DescribeAutoScalingGroups'));
    expect(asg.length).toBe(2);
    expect(actionsOf(asg[0]!).sort()).toEqual(['autoscaling:SetInstanceProtection', 'autoscaling:TerminateInstanceInAutoScalingGroup']);
    for (const s of asg) {
      expect(subText(resourcesOf(s)[0])).toMatch(/:autoScalingGroup:\*:autoScalingGroupName\/gq-\*$/);
      expect(s.Condition?.StringEquals?.['autoscaling:ResourceTag/gq:job']).toBe(JOB);
    }
    // Raising a group: only SetDesiredCapacity, only on the job's on-demand groups (agent/src/on-demand.ts).
    expect(actionsOf(asg[1]!)).toEqual(['autoscaling:SetDesiredCapacity']);
    expect(asg[1]!.Condition?.StringEquals?.['autoscaling:ResourceTag/gq:pool']).toBe('on-demand');
    const describeGroups = statementsWith('autoscaling:DescribeAutoScalingGroups');
    expect(describeGroups.map(actionsOf)).toEqual([['autoscaling:DescribeAutoScalingGroups']]);

    const tags = statementsWith('ec2:CreateTags');
    expect(tags.length).toBe(1);
    expect(subText(resourcesOf(tags[0]!)[0])).toMatch(/:instance\/\*$/);
    expect(tags[0]!.Condition?.StringEquals?.['aws:ResourceTag/gq:job']).toBe(JOB);
    expect(tags[0]!.Condition?.['ForAllValues:StringNotLike']?.['aws:TagKeys']).toEqual(['gq:*']);

    // Nothing else: every Allow is one of the statements above or the Describe exception.
    const known = new Set([...sqs, ...ddb, ...s3, ...kms, ...asg, ...describeGroups, ...tags, ...statementsWith('ec2:DescribeTags')]);
    expect(allowStatements.filter((s) => !known.has(s))).toEqual([]);
    // No IAM, STS or EC2 write actions besides CreateTags, in the policy and in its boundary.
    for (const s of [...allowStatements, ...boundaryDoc.statements]) {
      expect(s.Effect).toBe(s.Sid === 'DenyCredentialsNotFromImdsV2' ? 'Deny' : 'Allow');
      for (const a of actionsOf(s)) {
        expect(a).not.toMatch(/^(iam|sts|ssm|secretsmanager|cloudformation):/);
        if (a.startsWith('ec2:')) expect(['ec2:CreateTags', 'ec2:DescribeTags', 'ec2:DescribeInstances', 'ec2:DescribeSpotPriceHistory']).toContain(a);
      }
    }
  });

  it('caps every job role with a boundary that grants no more than the agent policy (same actions, gq resources only)', () => {
    const actions = (d: PolicyDoc) => new Set(d.statements.filter((s) => s.Effect === 'Allow').flatMap(actionsOf));
    expect([...actions(boundaryDoc)].sort()).toEqual([...actions(agentDoc)].sort());
    for (const s of boundaryDoc.statements) {
      for (const r of resourcesOf(s)) {
        if (r === '*') continue;
        expect(JSON.stringify(r)).toMatch(/StatusTable|ArtifactBucket|ArtifactKey|:sqs:.*:gq-\*|autoScalingGroupName\/gq-\*|:instance\/\*/);
      }
    }
  });

  it("the user policy passes only gq's job roles, to EC2 only, and creates roles only with the boundary and the agent policy", () => {
    const rolePath = 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/gq/${AWS::StackName}/*';
    const iamStatements = userAllows.filter((s) => actionsOf(s).some((a) => a.startsWith('iam:')));
    for (const s of iamStatements) {
      for (const r of resourcesOf(s).map(subText)) expect(r, s.Sid).toMatch(/:(role|instance-profile)\/(gq\/\$\{AWS::StackName\}\/\*|aws-service-role\/autoscaling\.amazonaws\.com\/)/);
      for (const a of actionsOf(s)) expect(a, s.Sid).not.toMatch(/^iam:(Put|Update|Delete)Role(Policy|PermissionsBoundary)$|^iam:CreatePolicy|^iam:CreateUser|^iam:CreateAccessKey/);
    }
    const pass = statementsIn(userAllows, 'iam:PassRole');
    expect(pass).toHaveLength(1);
    expect(resourcesOf(pass[0]!).map(subText)).toEqual([rolePath]);
    expect(pass[0]!.Condition?.StringEqualsIfExists?.['iam:PassedToService']).toBe('ec2.amazonaws.com');
    const create = statementsIn(userAllows, 'iam:CreateRole');
    expect(create).toHaveLength(1);
    expect(actionsOf(create[0]!)).toEqual(['iam:CreateRole']);
    expect(create[0]!.Condition?.StringEquals?.['iam:PermissionsBoundary']).toEqual({ Ref: 'JobRoleBoundary' });
    const attach = statementsIn(userAllows, 'iam:AttachRolePolicy');
    expect(attach).toHaveLength(1);
    expect(attach[0]!.Condition?.ArnEquals?.['iam:PolicyARN']).toEqual({ Ref: 'JobAgentPolicy' });
    const slr = statementsIn(userAllows, 'iam:CreateServiceLinkedRole');
    expect(slr[0]!.Condition?.StringEquals?.['iam:AWSServiceName']).toBe('autoscaling.amazonaws.com');
    // RunInstances only from launch templates; tags only when creating.
    expect(statementsIn(userAllows, 'ec2:RunInstances')[0]!.Condition?.ArnLike?.['ec2:LaunchTemplate']).toBeDefined();
    for (const s of statementsIn(userAllows, 'ec2:CreateTags')) expect(s.Condition?.StringEquals?.['ec2:CreateAction']).toEqual(['CreateLaunchTemplate', 'RunInstances']);
    // Queues, table, bucket, key: gq's own.
    for (const s of userAllows.filter((x) => actionsOf(x).some((a) => /^(sqs|dynamodb|s3|kms):/.test(a)))) {
      for (const r of resourcesOf(s)) expect(JSON.stringify(r), s.Sid).toMatch(/StatusTable|ArtifactBucket|ArtifactKey|:sqs:.*:gq-\*/);
    }
    expect(statementsIn(userAllows, 'sqs:TagQueue')).toHaveLength(1);
    expect(statementsIn(userAllows, 'kms:Decrypt')[0]!.Condition?.StringEquals?.['kms:ViaService']).toBeDefined();
  });

  it('refuses role credentials that came through IMDSv1', () => {
    const deny = identity.flatMap((d) => d.statements).find((s) => s.Effect === 'Deny' && s.Condition?.NumericLessThan?.['ec2:RoleDelivery']);
    expect(deny?.Condition?.NumericLessThan?.['ec2:RoleDelivery']).toBe('2.0');
    expect(resourcesOf(deny!)).toEqual(['*']);
  });

  it('creates no role, IAM user, group or access key; job roles (job-role.ts) trust EC2 only', () => {
    const types = Object.values(tpl.Resources).map((r) => r.Type);
    for (const t of ['AWS::IAM::Role', 'AWS::IAM::InstanceProfile', 'AWS::IAM::User', 'AWS::IAM::AccessKey', 'AWS::IAM::Group', 'AWS::IAM::UserToGroupAddition', 'AWS::IAM::UserPolicy']) {
      expect(types).not.toContain(t);
    }
    expect(text).not.toMatch(/AccessKey|SecretAccessKey|aws_secret/i);
    expect(JSON.parse(EC2_TRUST_POLICY)).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    });
  });

  it('grants nothing to Principal "*" anywhere (bucket and key policies only deny or name the account)', () => {
    for (const d of docs) {
      for (const s of d.statements) {
        if (s.Effect === 'Allow') expect(JSON.stringify(s.Principal ?? null), `${d.where} ${s.Sid}`).not.toMatch(/"\*"|^"\*"$/);
      }
    }
    const key = docs.find((d) => d.kind === 'key')!;
    for (const s of key.statements) {
      expect(s.Principal).toEqual({ AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' } });
      for (const a of actionsOf(s)) expect(a).not.toBe('kms:*');
    }
  });
});

describe('infra/gq.yaml: network and data at rest', () => {
  it('has no ingress anywhere; egress is HTTPS, HTTP+HTTPS (default) or all, as AgentEgress says', () => {
    expect(allKeys(tpl)).not.toContain('SecurityGroupIngress');
    const types = Object.values(tpl.Resources).map((r) => r.Type);
    expect(types).not.toContain('AWS::EC2::SecurityGroupIngress');
    expect(text).not.toMatch(/SecurityGroupIngress|FromPort:\s*22\b/);
    const sgs = Object.values(tpl.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroup');
    expect(sgs).toHaveLength(1);
    const [cond, all, ports] = (sgs[0]!.Properties!.SecurityGroupEgress as { 'Fn::If': [string, Array<Record<string, Json>>, Array<Record<string, Json>>] })['Fn::If'];
    expect(cond).toBe('EgressAll');
    expect(all.map((e) => [e.IpProtocol, e.CidrIp ?? e.CidrIpv6])).toEqual([
      ['-1', '0.0.0.0/0'],
      ['-1', '::/0'],
    ]);
    const plain = ports.filter((e) => !('Fn::If' in e));
    expect(plain.map((e) => [e.IpProtocol, e.FromPort, e.ToPort])).toEqual([
      ['tcp', 443, 443],
      ['tcp', 443, 443],
    ]);
    const http = ports.filter((e) => 'Fn::If' in e).map((e) => e['Fn::If'] as [string, Record<string, Json>, Json]);
    expect(http.map((h) => [h[0], h[1].FromPort, h[1].ToPort])).toEqual([
      ['EgressHttp', 80, 80],
      ['EgressHttp', 80, 80],
    ]);
    expect(tpl.Parameters?.AgentEgress?.Default).toBe('http-and-https');
    expect(tpl.Parameters?.AgentEgress?.AllowedValues).toEqual(['https-only', 'http-and-https', 'all']);
    expect(tpl.Conditions?.EgressHttp).toEqual({ 'Fn::Equals': [{ Ref: 'AgentEgress' }, 'http-and-https'] });
  });

  it('offers private subnets: subnet list, no public IPv4, free gateway endpoints for S3 and DynamoDB', () => {
    expect(tpl.Parameters?.PublicIpv4?.AllowedValues).toEqual(['subnet-default', 'none']);
    expect(tpl.Parameters?.SubnetIds?.Type).toBe('CommaDelimitedList');
    const endpoints = Object.entries(tpl.Resources).filter(([, r]) => r.Type === 'AWS::EC2::VPCEndpoint');
    expect(endpoints.map(([, r]) => [r.Condition, r.Properties?.VpcEndpointType, subText(r.Properties?.ServiceName)])).toEqual([
      ['HasGatewayEndpoints', 'Gateway', 'com.amazonaws.${AWS::Region}.s3'],
      ['HasGatewayEndpoints', 'Gateway', 'com.amazonaws.${AWS::Region}.dynamodb'],
    ]);
    expect(tpl.Outputs?.PublicIpv4?.Value).toEqual({ Ref: 'PublicIpv4' });
  });

  it('blocks all public access to the bucket and encrypts it with the stack KMS key', () => {
    const bucket = tpl.Resources.ArtifactBucket!;
    expect(bucket.Type).toBe('AWS::S3::Bucket');
    const p = bucket.Properties as Record<string, any>;
    expect(p.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    const rule = p.BucketEncryption.ServerSideEncryptionConfiguration[0];
    expect(rule.ServerSideEncryptionByDefault).toEqual({ SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': ['ArtifactKey', 'Arn'] } });
    expect(rule.BucketKeyEnabled).toBe(true);
    expect(p.OwnershipControls.Rules[0].ObjectOwnership).toBe('BucketOwnerEnforced');
    expect(p.LifecycleConfiguration.Rules.some((r: any) => r.Status === 'Enabled' && r.AbortIncompleteMultipartUpload)).toBe(true);
    expect(tpl.Resources.ArtifactKey!.Properties!.EnableKeyRotation).toBe(true);
  });

  it('denies every non-TLS request to the bucket', () => {
    const policy = Object.values(tpl.Resources).find((r) => r.Type === 'AWS::S3::BucketPolicy')!;
    expect(policy.Properties!.Bucket).toEqual({ Ref: 'ArtifactBucket' });
    const st = docs.find((d) => d.kind === 'bucket')!.statements;
    const tls = st.find((s) => s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
    expect(tls).toMatchObject({ Effect: 'Deny', Principal: '*', Action: 's3:*' });
    expect(resourcesOf(tls!).map(subText).sort()).toEqual(['${ArtifactBucket.Arn}/*', JSON.stringify({ 'Fn::GetAtt': ['ArtifactBucket', 'Arn'] })].sort());
    expect(st.every((s) => s.Effect === 'Deny')).toBe(true);
  });

  it('encrypts the table, with point-in-time recovery, TTL on expiresAt and on-demand billing', () => {
    const t = tpl.Resources.StatusTable!;
    expect(t.Type).toBe('AWS::DynamoDB::Table');
    const p = t.Properties as Record<string, any>;
    expect(p.SSESpecification).toEqual({ SSEEnabled: true });
    expect(p.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(p.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(p.BillingMode).toBe('PAY_PER_REQUEST');
    expect(p.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(p.AttributeDefinitions).toEqual([
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'fpk', AttributeType: 'S' },
      { AttributeName: 'fsk', AttributeType: 'N' },
    ]);
    // The sparse index of FAILED tasks, under the names the store queries (status-store/items.ts).
    expect(p.GlobalSecondaryIndexes).toEqual([
      { IndexName: FAILED_INDEX, KeySchema: [{ AttributeName: FAILED_PK, KeyType: 'HASH' }, { AttributeName: FAILED_SK, KeyType: 'RANGE' }], Projection: { ProjectionType: 'ALL' } },
    ]);
  });

  it('keeps the data when the stack goes (Retain on bucket, table and key)', () => {
    for (const n of ['ArtifactBucket', 'StatusTable', 'ArtifactKey']) {
      expect(tpl.Resources[n]!.DeletionPolicy, n).toBe('Retain');
      expect(tpl.Resources[n]!.UpdateReplacePolicy, n).toBe('Retain');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('stack.ts and doctor.ts helpers', () => {
  const validation = (message: string) => Object.assign(new Error(message), { name: 'ValidationError' });

  it('recognises "No updates are to be performed" only as a ValidationError with that message', () => {
    expect(isNoUpdatesError(validation('No updates are to be performed.'))).toBe(true);
    expect(isNoUpdatesError(validation('Stack with id gq does not exist'))).toBe(false);
    expect(isNoUpdatesError(Object.assign(new Error('No updates are to be performed.'), { name: 'Throttling' }))).toBe(false);
    expect(isStackMissingError(validation('Stack with id gq does not exist'))).toBe(true);
    expect(isStackMissingError(validation('Template format error'))).toBe(false);
  });

  it('explains credential problems with the fix, and nothing else as one', () => {
    const named = (name: string, message = 'x') => Object.assign(new Error(message), { name });
    expect(credentialProblem(named('CredentialsProviderError', 'Could not load credentials from any providers'))).toMatch(/aws configure.*aws sso login/);
    expect(credentialProblem(named('ExpiredToken'))).toMatch(/expired.*aws sso login/);
    expect(credentialProblem(named('InvalidClientTokenId'))).toMatch(/rejected.*aws configure/);
    expect(credentialProblem(named('TokenProviderError', 'SSO Token is expired'))).toMatch(/aws sso login/);
    expect(credentialProblem(named('ValidationError', 'Template format error'))).toBeUndefined();
  });

  it('keeps previous parameter values on update unless given', () => {
    const existing: Stack = {
      StackName: 'gq',
      CreationTime: new Date(),
      StackStatus: 'CREATE_COMPLETE',
      Parameters: [
        { ParameterKey: 'VpcId', ParameterValue: 'vpc-12345678' },
        { ParameterKey: 'AllowHttpEgress', ParameterValue: 'true' },
      ],
    };
    expect(updateParameters({}, ['VpcId', 'AllowHttpEgress', 'NewOne'], existing)).toEqual([
      { ParameterKey: 'VpcId', UsePreviousValue: true },
      { ParameterKey: 'AllowHttpEgress', UsePreviousValue: true },
    ]);
    expect(updateParameters({ VpcId: 'vpc-87654321', NewOne: 'x' }, ['VpcId', 'AllowHttpEgress', 'NewOne'], existing)).toEqual([
      { ParameterKey: 'VpcId', ParameterValue: 'vpc-87654321' },
      { ParameterKey: 'AllowHttpEgress', UsePreviousValue: true },
      { ParameterKey: 'NewOne', ParameterValue: 'x' },
    ]);
  });

  it('maps outputs, and says what to do with a stack that is not usable', () => {
    const base: Stack = { StackName: 'gq', CreationTime: new Date(), StackStatus: 'UPDATE_COMPLETE' };
    const out = (o: Record<string, string>) => Object.entries(o).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue }));
    const full = {
      BucketName: 'b',
      TableName: 't',
      JobAgentPolicyArn: 'arn:a',
      JobRoleBoundaryArn: 'arn:b',
      JobRolePath: '/gq/gq/',
      UserPolicyArn: 'arn:u',
      SecurityGroupId: 'sg-1',
      SubnetIds: 'subnet-1,subnet-2',
      PublicIpv4: 'none',
      KmsKeyArn: 'arn:k',
      TemplateVersion: '2',
    };
    expect(outputsFromStack({ ...base, Outputs: out(full) }, 'gq', 'us-east-1')).toEqual({
      bucket: 'b',
      table: 't',
      jobAgentPolicyArn: 'arn:a',
      jobRoleBoundaryArn: 'arn:b',
      jobRolePath: '/gq/gq/',
      userPolicyArn: 'arn:u',
      subnetIds: ['subnet-1', 'subnet-2'],
      publicIpv4: 'none',
      securityGroupId: 'sg-1',
      kmsKeyArn: 'arn:k',
      templateVersion: '2',
    });
    // A stack of template version 1 (one shared instance role) must be updated first.
    const { JobAgentPolicyArn: _a, ...v1 } = full;
    expect(() => outputsFromStack({ ...base, Outputs: out(v1) }, 'gq', 'us-east-1')).toThrow(/JobAgentPolicyArn/);
    const { SecurityGroupId: _, ...noSg } = full;
    expect(() => outputsFromStack({ ...base, Outputs: out(noSg) }, 'gq', 'us-east-1')).toThrow(/SecurityGroupId/);
    expect(() => outputsFromStack({ ...base, StackStatus: 'ROLLBACK_COMPLETE', Outputs: out(full) }, 'gq', 'us-east-1')).toThrow(
      /ROLLBACK_COMPLETE/,
    );
  });

  it('prints a check as status, name, detail and fix', () => {
    expect(formatCheck({ name: 'stack', status: 'FAIL', detail: 'missing', fix: 'run `gq setup`' })).toBe(
      'FAIL  stack: missing\n      fix: run `gq setup`',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Against moto

const SECRET = 'gq-test-secret-value-9f8e7d6c5b';
const ENV_KEYS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ENDPOINT_URL',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_EC2_METADATA_DISABLED',
];

function testContext(config: Partial<Config> = {}): { ctx: CommandContext; lines: string[] } {
  const lines: string[] = [];
  const ctx: CommandContext = {
    config: { ...configSchema.parse({ backend: 'aws' }), ...config },
    log: createLogger({ level: 'silent' }),
    io: { out: (l) => lines.push(l), err: (l) => lines.push(l) },
  };
  return { ctx, lines };
}

describeAws('the stack on moto', () => {
  let moto: Moto | undefined;
  let endpoint = '';
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const k of ENV_KEYS) saved[k] = process.env[k];
    moto = await startMoto();
    if (!moto) throw new Error('moto vanished');
    endpoint = moto.endpoint;
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_SESSION_TOKEN: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: endpoint,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    delete process.env.AWS_PROFILE;
  });

  afterAll(async () => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await moto?.stop();
  });

  it('creates the stack; its outputs name a bucket, a table and a security group that exist', async () => {
    const c = makeSetupClients('us-east-1');
    try {
      const vpc = await findDefaultVpc(c.ec2);
      expect(vpc).toMatch(/^vpc-/);
      const progress: string[] = [];
      const first = await deployStack({ cfn: c.cfn, ec2: c.ec2, stackName: 'gq', params: { VpcId: vpc! }, onProgress: (l) => progress.push(l) });
      expect(first.action).toBe('created');
      expect(progress.join('\n')).toMatch(/Creating stack gq/);

      const out = await readStackOutputs({ cfn: c.cfn, stackName: 'gq' });
      expect(out).toEqual(first.outputs);
      expect(out.jobAgentPolicyArn).toMatch(/^arn:aws:iam::\d{12}:policy\/gq\//);
      expect(out.jobRoleBoundaryArn).toMatch(/^arn:aws:iam::\d{12}:policy\/gq\//);
      expect(out.userPolicyArn).toMatch(/^arn:aws:iam::\d{12}:policy\/gq\//);
      expect(out.jobRolePath).toBe('/gq/gq/');
      expect(out.kmsKeyArn).toMatch(/^arn:aws:kms:us-east-1:\d{12}:key\//);
      expect(out.templateVersion).toBe(templateVersion());

      const s3 = new S3Client({ region: 'us-east-1', forcePathStyle: true });
      const ddb = new DynamoDBClient({ region: 'us-east-1' });
      try {
        await s3.send(new HeadBucketCommand({ Bucket: out.bucket }));
        const table = await ddb.send(new DescribeTableCommand({ TableName: out.table }));
        expect(table.Table?.KeySchema).toEqual([
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ]);
        expect(table.Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
      } finally {
        s3.destroy();
        ddb.destroy();
      }
      const sg = await c.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [out.securityGroupId] }));
      expect(sg.SecurityGroups?.[0]?.VpcId).toBe(vpc);
      expect(sg.SecurityGroups?.[0]?.IpPermissions ?? []).toEqual([]); // no ingress
    } finally {
      destroySetupClients(c);
    }
  });

  it('deploys the private-subnet choices: named subnets, no public IPv4, gateway endpoints, all egress', async () => {
    const c = makeSetupClients('us-east-1');
    try {
      const vpc = (await findDefaultVpc(c.ec2))!;
      const subnets = ((await c.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }] }))).Subnets ?? []).map((x) => x.SubnetId!).slice(0, 2);
      const rtb = (await c.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }] }))).RouteTables![0]!.RouteTableId!;
      const params = setupParameters({ stack: 'gq-private', region: 'us-east-1', vpcId: vpc, egress: 'all', publicIpv4: 'none', subnetIds: subnets, gatewayEndpointRouteTables: [rtb] });
      const r = await deployStack({ cfn: c.cfn, ec2: c.ec2, stackName: 'gq-private', params, minDelay: 1, maxDelay: 1 });
      expect(r.outputs).toMatchObject({ subnetIds: subnets, publicIpv4: 'none', jobRolePath: '/gq/gq-private/' });
      const endpoints = (await c.ec2.send(new DescribeVpcEndpointsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }] }))).VpcEndpoints ?? [];
      expect(endpoints.map((e) => [e.ServiceName, e.VpcEndpointType, e.RouteTableIds]).sort()).toEqual([
        ['com.amazonaws.us-east-1.dynamodb', 'Gateway', [rtb]],
        ['com.amazonaws.us-east-1.s3', 'Gateway', [rtb]],
      ]);
      const sg = await c.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [r.outputs.securityGroupId] }));
      expect(sg.SecurityGroups?.[0]?.IpPermissions ?? []).toEqual([]); // still no ingress
    } finally {
      destroySetupClients(c);
    }
  });

  it('a second deploy of the same template is a no-op success', async () => {
    const c = makeSetupClients('us-east-1');
    try {
      const before = await readStackOutputs({ cfn: c.cfn, stackName: 'gq' });
      const again = await deployStack({ cfn: c.cfn, ec2: c.ec2, stackName: 'gq' });
      expect(again.action).toBe('unchanged');
      expect(again.outputs).toEqual(before);
    } finally {
      destroySetupClients(c);
    }
  });

  it('gq setup on the existing stack reports it up to date and prints its resources', async () => {
    const { ctx, lines } = testContext();
    const mirror = await startNodeMirror(PINNED_NODE_VERSION);
    try {
      expect(await runSetup(ctx, { stack: 'gq', region: 'us-east-1', nodeMirror: mirror.url })).toBe(0);
      // Once per account: a second run finds the Node.js build stored and downloads nothing.
      const served = mirror.requests.length;
      expect(served).toBe(3); // SHASUMS256.txt and two tarballs
      expect(await runSetup(ctx, { stack: 'gq', region: 'us-east-1', nodeMirror: mirror.url })).toBe(0);
      expect(mirror.requests).toHaveLength(served);
    } finally {
      await mirror.close();
    }
    const text = lines.join('\n');
    expect(text).toMatch(/Stack gq in us-east-1 is up to date/);
    expect(text).toMatch(new RegExp(`Node.js\\s+${PINNED_NODE_VERSION} stored \\(from http://127`));
    expect(text).toMatch(new RegExp(`Node.js\\s+${PINNED_NODE_VERSION} already stored`));
    expect(text).toMatch(/security group\s+sg-\S+ \(no inbound rules\)/);
    expect(text).not.toContain(SECRET);
  });

  it('gq doctor passes where the stack is (quota: could not check on moto)', async () => {
    const c = makeSetupClients('us-east-1');
    let ami: Record<string, string> = {};
    try {
      // moto's stock images may not include Amazon Linux 2023: pin one that moto has.
      const imgs = await c.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
      const id = imgs.Images?.find((i) => i.State === 'available')?.ImageId;
      if (id) ami = { '*': id };
      // AWS's default VPC routes 0.0.0.0/0 to an internet gateway; moto's has no such route.
      const vpc = await findDefaultVpc(c.ec2);
      const main = (await c.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc!] }, { Name: 'association.main', Values: ['true'] }] })))
        .RouteTables![0]!;
      if (!main.Routes?.some((r) => r.DestinationCidrBlock === '0.0.0.0/0')) {
        const igw = (await c.ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!;
        await c.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpc! }));
        await c.ec2.send(new CreateRouteCommand({ RouteTableId: main.RouteTableId!, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw }));
      }
    } finally {
      destroySetupClients(c);
    }
    const { ctx, lines } = testContext({ ami });
    const code = await runDoctor(ctx, { stack: 'gq', region: 'us-east-1' });
    const text = lines.join('\n');
    expect(text, text).toMatch(/^ok\s+region: us-east-1/m);
    expect(text).toMatch(/^ok\s+credentials: account \d{12}/m);
    expect(text).toMatch(/^ok\s+stack: gq: bucket /m);
    expect(text).toMatch(/^ok\s+template version: /m);
    expect(text).toMatch(/^ok\s+AMI: m5\.large → ami-\S+ .*\(x86_64; named in the ami setting\)/m);
    expect(text).toMatch(/^ok\s+network: subnet-\S+ \(us-east-1a\): internet gateway/m);
    expect(text).toMatch(/^(warn\s+vCPU quota: could not check|ok\s+vCPU quota)/m);
    expect(text).not.toContain(SECRET);
    expect(code).toBe(0);
  });

  it('gq doctor in a region with no stack fails and says to run gq setup', async () => {
    const { ctx, lines } = testContext({ ami: { '*': 'no-such-image-*' } });
    const code = await runDoctor(ctx, { stack: 'gq', region: 'eu-west-1' });
    const text = lines.join('\n');
    expect(code).toBe(1);
    expect(text).toMatch(/^ok\s+credentials: /m);
    expect(text).toMatch(/^FAIL\s+stack: No gq stack "gq" in eu-west-1/m);
    expect(text).toMatch(/fix: run `gq setup --region eu-west-1`/);
    expect(text).toMatch(/^skip\s+template version/m);
    expect(text).toMatch(/^FAIL\s+AMI: m5\.large, setting "no-such-image-\*": No x86_64 AMI named "no-such-image-\*" owned by amazon/m);
    expect(text).not.toContain(SECRET);
  });

  it('readStackOutputs on a missing stack is a UserError telling to run gq setup', async () => {
    const c = makeSetupClients('eu-west-1');
    try {
      await expect(readStackOutputs({ cfn: c.cfn, stackName: 'gq' })).rejects.toMatchObject({
        name: 'UserError',
        hint: expect.stringMatching(/gq setup/),
      });
    } finally {
      destroySetupClients(c);
    }
  });

  it('gq doctor without credentials fails with the fix and prints no secret', async () => {
    const keep = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    delete process.env.AWS_SESSION_TOKEN;
    try {
      const { ctx, lines } = testContext();
      const code = await runDoctor(ctx, { stack: 'gq', region: 'us-east-1' });
      const text = lines.join('\n');
      expect(code).toBe(1);
      expect(text).toMatch(/^FAIL\s+credentials: No AWS credentials found/m);
      expect(text).toMatch(/aws configure/);
      expect(text).toMatch(/aws sso login/);
      expect(text).toMatch(/^skip\s+stack: needs working credentials/m);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = keep.id;
      process.env.AWS_SECRET_ACCESS_KEY = keep.secret;
      process.env.AWS_SESSION_TOKEN = keep.token;
    }
  });
});
