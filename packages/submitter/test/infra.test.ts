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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSecurityGroupsCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { Stack } from '@aws-sdk/client-cloudformation';
import { configSchema, createLogger, type Config } from '@gq/common';
import {
  credentialProblem,
  deployStack,
  destroySetupClients,
  findDefaultVpc,
  isNoUpdatesError,
  isStackMissingError,
  makeSetupClients,
  outputsFromStack,
  parseTemplate,
  readStackOutputs,
  readTemplate,
  templateCandidates,
  templatePath,
  templateVersion,
  updateParameters,
  type CfnTemplate,
} from '../src/aws/stack.js';
import { formatCheck, runDoctor } from '../src/commands/doctor.js';
import { runSetup } from '../src/commands/setup.js';
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
const RESOURCE_STAR_ALLOWED = new Set(['ec2:DescribeTags', 'ec2:DescribeInstances']);

const docs = policyDocs(tpl);
const identity = docs.filter((d) => d.kind === 'identity');
const allowStatements = identity.flatMap((d) => d.statements.filter((s) => s.Effect === 'Allow'));
const resourcesOf = (s: Statement): Json[] => asArray(s.Resource as Json | Json[]);
const actionsOf = (s: Statement): string[] => asArray(s.Action);
const statementsWith = (action: string): Statement[] => allowStatements.filter((s) => actionsOf(s).includes(action));

// ---------------------------------------------------------------------------------------------

describe('infra/gq.yaml: lint and structure', () => {
  it('passes cfn-lint with no errors, warnings or informational findings', (ctx) => {
    const probe = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
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
    // The compiled module sits at packages/submitter/dist/aws/stack.js: same depth as src/aws.
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
    for (const k of ['BucketName', 'TableName', 'InstanceProfileArn', 'SecurityGroupId', 'KmsKeyArn', 'TemplateVersion']) {
      expect(tpl.Outputs?.[k], k).toBeDefined();
    }
    expect(templateVersion(text)).toMatch(/^\d+$/);
  });
});

describe('infra/gq.yaml: least privilege', () => {
  it('finds the policies it checks', () => {
    expect(identity.length).toBeGreaterThan(0);
    expect(docs.some((d) => d.kind === 'bucket')).toBe(true);
    expect(docs.some((d) => d.kind === 'key')).toBe(true);
    expect(docs.some((d) => d.kind === 'trust')).toBe(true);
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

  it('scopes every grant: queues gq-*, the table, bucket prefixes, the key via S3, gq groups, tagged instances', () => {
    const sqs = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(sqs.length).toBeGreaterThan(0);
    for (const s of sqs) {
      expect(resourcesOf(s).map(subText)).toEqual(['arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:gq-*']);
      expect(actionsOf(s)).not.toContain('sqs:DeleteQueue');
      expect(actionsOf(s)).not.toContain('sqs:PurgeQueue');
      expect(actionsOf(s)).not.toContain('sqs:CreateQueue');
    }

    const ddb = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(ddb.length).toBeGreaterThan(0);
    for (const s of ddb) {
      for (const r of resourcesOf(s)) expect(JSON.stringify(r)).toContain('StatusTable');
      for (const a of actionsOf(s)) expect(['dynamodb:DeleteTable', 'dynamodb:Scan', 'dynamodb:UpdateTable']).not.toContain(a);
    }

    const s3 = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.length).toBeGreaterThan(0);
    const reads = statementsWith('s3:GetObject').flatMap(resourcesOf).map(subText);
    const writes = statementsWith('s3:PutObject').flatMap(resourcesOf).map(subText);
    expect(reads.sort()).toEqual(
      ['bundles/*', 'agent/*', 'node/*', 'jobs/*/install.sh', 'jobs/*/secret/*'].map((p) => '${ArtifactBucket.Arn}/' + p).sort(),
    );
    expect(writes.sort()).toEqual(['jobs/*/tasks/*', 'jobs/*/instances/*'].map((p) => '${ArtifactBucket.Arn}/' + p).sort());
    for (const s of s3) {
      for (const a of actionsOf(s)) expect(['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload']).toContain(a);
    }

    const kms = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')));
    expect(kms.length).toBe(1);
    expect(actionsOf(kms[0]!).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(resourcesOf(kms[0]!)).toEqual([{ 'Fn::GetAtt': ['ArtifactKey', 'Arn'] }]);
    expect(subText(kms[0]!.Condition?.StringEquals?.['kms:ViaService'])).toBe('s3.${AWS::Region}.${AWS::URLSuffix}');

    const asg = allowStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('autoscaling:')));
    expect(asg.length).toBe(1);
    expect(actionsOf(asg[0]!).sort()).toEqual(['autoscaling:SetInstanceProtection', 'autoscaling:TerminateInstanceInAutoScalingGroup']);
    expect(subText(resourcesOf(asg[0]!)[0])).toMatch(/:autoScalingGroup:\*:autoScalingGroupName\/gq-\*$/);
    expect(asg[0]!.Condition?.Null?.['autoscaling:ResourceTag/gq:job']).toBe('false');

    const tags = statementsWith('ec2:CreateTags');
    expect(tags.length).toBe(1);
    expect(subText(resourcesOf(tags[0]!)[0])).toMatch(/:instance\/\*$/);
    expect(tags[0]!.Condition?.Null?.['aws:ResourceTag/gq:job']).toBe('false');
    expect(tags[0]!.Condition?.['ForAllValues:StringNotLike']?.['aws:TagKeys']).toEqual(['gq:*']);

    // Nothing else: every Allow is one of the statements above or the Describe exception.
    const known = new Set([...sqs, ...ddb, ...s3, ...kms, ...asg, ...tags, ...statementsWith('ec2:DescribeTags')]);
    expect(allowStatements.filter((s) => !known.has(s))).toEqual([]);
    // No IAM, STS or EC2 write actions besides CreateTags.
    for (const s of allowStatements) {
      for (const a of actionsOf(s)) {
        expect(a).not.toMatch(/^(iam|sts|ssm|secretsmanager):/);
        if (a.startsWith('ec2:')) expect(['ec2:CreateTags', 'ec2:DescribeTags', 'ec2:DescribeInstances']).toContain(a);
      }
    }
  });

  it('refuses role credentials that came through IMDSv1', () => {
    const deny = identity.flatMap((d) => d.statements).find((s) => s.Effect === 'Deny' && s.Condition?.NumericLessThan?.['ec2:RoleDelivery']);
    expect(deny?.Condition?.NumericLessThan?.['ec2:RoleDelivery']).toBe('2.0');
    expect(resourcesOf(deny!)).toEqual(['*']);
  });

  it('lets only EC2 assume the role, and creates no IAM user, group or access key', () => {
    const roles = Object.entries(tpl.Resources).filter(([, r]) => r.Type === 'AWS::IAM::Role');
    expect(roles.map(([n]) => n)).toEqual(['InstanceRole']);
    const trust = docs.filter((d) => d.kind === 'trust');
    expect(trust).toHaveLength(1);
    expect(trust[0]!.statements).toEqual([
      { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
    const types = Object.values(tpl.Resources).map((r) => r.Type);
    for (const t of ['AWS::IAM::User', 'AWS::IAM::AccessKey', 'AWS::IAM::Group', 'AWS::IAM::UserToGroupAddition', 'AWS::IAM::UserPolicy']) {
      expect(types).not.toContain(t);
    }
    expect(text).not.toMatch(/AccessKey|SecretAccessKey|aws_secret/i);
    // The instance profile carries exactly that role.
    const profiles = Object.values(tpl.Resources).filter((r) => r.Type === 'AWS::IAM::InstanceProfile');
    expect(profiles.map((p) => p.Properties?.Roles)).toEqual([[{ Ref: 'InstanceRole' }]]);
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
  it('has no ingress anywhere; the security group only lets HTTPS out (HTTP only when asked)', () => {
    expect(allKeys(tpl)).not.toContain('SecurityGroupIngress');
    const types = Object.values(tpl.Resources).map((r) => r.Type);
    expect(types).not.toContain('AWS::EC2::SecurityGroupIngress');
    expect(text).not.toMatch(/SecurityGroupIngress|FromPort:\s*22\b/);
    const sgs = Object.values(tpl.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroup');
    expect(sgs).toHaveLength(1);
    const egress = sgs[0]!.Properties!.SecurityGroupEgress as Array<Record<string, Json>>;
    const plain = egress.filter((e) => !('Fn::If' in e));
    expect(plain.map((e) => [e.IpProtocol, e.FromPort, e.ToPort])).toEqual([
      ['tcp', 443, 443],
      ['tcp', 443, 443],
    ]);
    const conditional = egress.filter((e) => 'Fn::If' in e).map((e) => e['Fn::If'] as [string, Record<string, Json>, Json]);
    expect(conditional).toHaveLength(1);
    expect(conditional[0]![0]).toBe('HttpEgress');
    expect([conditional[0]![1].FromPort, conditional[0]![1].ToPort]).toEqual([80, 80]);
    expect(tpl.Parameters?.AllowHttpEgress?.Default).toBe('false');
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
    const full = { BucketName: 'b', TableName: 't', InstanceProfileArn: 'arn:p', SecurityGroupId: 'sg-1', KmsKeyArn: 'arn:k', TemplateVersion: '1' };
    expect(outputsFromStack({ ...base, Outputs: out(full) }, 'gq', 'us-east-1')).toEqual({
      bucket: 'b',
      table: 't',
      instanceProfileArn: 'arn:p',
      securityGroupId: 'sg-1',
      kmsKeyArn: 'arn:k',
      templateVersion: '1',
    });
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

const MOTO = spawnSync('sh', ['-c', 'command -v moto_server'], { stdio: 'ignore' }).status === 0;
if (!MOTO) {
  console.warn(`\n${'!'.repeat(90)}\n!! SKIPPED: moto_server is not on PATH (pip install 'moto[server]'); stack deploy NOT tested\n${'!'.repeat(90)}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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

describe.skipIf(!MOTO)('the stack on moto', () => {
  let moto: ChildProcess;
  let endpoint = '';
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const k of ENV_KEYS) saved[k] = process.env[k];
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore', detached: true });
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
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const r = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        if (r.ok) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline || moto.exitCode !== null) throw new Error('moto_server did not start');
      await new Promise((r) => setTimeout(r, 150));
    }
  });

  afterAll(async () => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    if (!moto?.pid) return;
    const pid = moto.pid;
    const exited = new Promise<void>((r) => (moto.exitCode !== null || moto.signalCode !== null ? r() : moto.once('exit', () => r())));
    try {
      process.kill(-pid, 'SIGTERM'); // its process group: moto and anything it started
    } catch {
      /* already gone */
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (alive(pid)) {
      process.kill(-pid, 'SIGKILL');
      await exited;
    }
    expect(alive(pid)).toBe(false);
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
      expect(out.instanceProfileArn).toMatch(/^arn:aws:iam::\d{12}:instance-profile\/gq\//);
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
    expect(text).toMatch(/^ok\s+AMI: m5\.large \(x86_64\) → ami-/m);
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
    expect(text).toMatch(/^FAIL\s+AMI: m5\.large \(x86_64\), setting "no-such-image-\*"/m);
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
