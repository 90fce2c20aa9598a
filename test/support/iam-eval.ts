/**
 * IAM evaluation of gq's own AWS calls against the policies of infra/gq.yaml, with a maintained
 * IAM simulator (@cloud-copilot/iam-simulate) rather than a home-made evaluator.
 *
 * 1. `toRequests` (pure) turns each call recorded by packages/common/src/aws/call-log.ts into
 *    the IAM authorisation requests AWS makes for it: the action, the resource ARN and the
 *    condition keys (aws:ResourceTag, aws:RequestTag, aws:TagKeys, dynamodb:LeadingKeys,
 *    iam:PassedToService, iam:PermissionsBoundary, iam:PolicyARN, kms:ViaService, ...), and the
 *    requests some calls imply (a CreateAutoScalingGroup is checked for ec2:RunInstances and
 *    iam:PassRole of its launch template's role; S3 on SSE-KMS objects for kms:Decrypt /
 *    kms:GenerateDataKey; TransactWriteItems item by item).
 * 2. `evaluate` runs each request through the simulator with the user policy (the CLI) or the
 *    job agent policy plus its permissions boundary and the role's gq-job tag (the agents).
 *
 * Simulator fidelity (checked by test/iam-isolation.test.ts; see test/README.md):
 *  - aws:PrincipalTag variables in Condition values, dynamodb:LeadingKeys with
 *    ForAllValues:StringEquals, iam:PassedToService, aws:RequestTag, aws:ResourceTag,
 *    autoscaling:ResourceTag, permissions boundaries: evaluated.
 *  - A ${aws:PrincipalTag/...} variable inside an SQS or SNS Resource ARN is NOT matched by
 *    iam-simulate 0.1.173 (it splits the ARN at the variable's colon): gq's template scopes SQS
 *    by aws:ResourceTag instead, which it evaluates.
 *  - The simulator does not know which condition keys a service really sends with a request;
 *    `toRequests` supplies them as AWS documents them for each action.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { CallRecord } from '../../packages/common/src/aws/call-log.js';

export interface IamRequest {
  action: string;
  resource: string;
  context: Record<string, string | string[]>;
  /** Where it comes from: "SQS.SendMessageBatch" or "implied by AutoScaling.CreateAutoScalingGroup". */
  origin: string;
}

export interface Account {
  account: string;
  region: string;
  bucket: string;
  table: string;
  kmsKeyArn: string;
  stackId: string;
  jobRolePath: string;
}

/** What the call log says about resources created earlier in the run (their tags, roles). */
export interface Seen {
  queueTags: Map<string, Record<string, string>>;
  groupTags: Map<string, Record<string, string>>;
  templateProfiles: Map<string, string>;
}

export function collectSeen(records: readonly CallRecord[]): Seen {
  const seen: Seen = { queueTags: new Map(), groupTags: new Map(), templateProfiles: new Map() };
  for (const r of records) {
    const f = r.fields as Record<string, any>;
    if (r.service === 'SQS' && r.operation === 'CreateQueue' && f.QueueName) seen.queueTags.set(f.QueueName, f.Tags ?? {});
    if (r.service === 'AutoScaling' && r.operation === 'CreateAutoScalingGroup' && f.AutoScalingGroupName) seen.groupTags.set(f.AutoScalingGroupName, f.Tags ?? {});
    if (r.service === 'EC2' && r.operation === 'CreateLaunchTemplate' && f.LaunchTemplateName && f.LaunchTemplateData?.IamInstanceProfile) {
      seen.templateProfiles.set(f.LaunchTemplateName, f.LaunchTemplateData.IamInstanceProfile);
    }
  }
  return seen;
}

const GROUP_UUID = '00000000-0000-4000-8000-000000000000';

function tagContext(prefix: 'aws:RequestTag' | 'aws:ResourceTag' | 'autoscaling:ResourceTag', tags: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags ?? {})) out[`${prefix}/${k}`] = v;
  return out;
}

const tagKeys = (tags: Record<string, string> | undefined): Record<string, string[]> =>
  tags && Object.keys(tags).length ? { 'aws:TagKeys': Object.keys(tags) } : {};

/** Document-client operation names (lib-dynamodb) → DynamoDB API names. */
const DOC_OPS: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactWrite: 'TransactWriteItems',
  TransactGet: 'TransactGetItems',
  Query: 'Query',
  Scan: 'Scan',
};

/** Calls that need no IAM permission at all. */
const UNAUTHORISED_OK = new Set(['STS.GetCallerIdentity']);

/** The IAM requests AWS makes for one recorded call (pure). */
export function toRequests(r: CallRecord, a: Account, seen: Seen): IamRequest[] {
  const f = r.fields as Record<string, any>;
  const origin = `${r.service}.${r.operation}`;
  const region = r.region ?? a.region;
  const out: IamRequest[] = [];
  const add = (action: string, resource: string, context: Record<string, string | string[]> = {}, implied = false) =>
    out.push({ action, resource, context: { 'aws:RequestedRegion': region, ...context }, origin: implied ? `implied by ${origin}` : origin });
  if (UNAUTHORISED_OK.has(origin)) return out;

  switch (r.service) {
    case 'SQS': {
      const name: string = f.QueueName ?? String(f.QueueUrl ?? '').split('/').pop() ?? '';
      const arn = `arn:aws:sqs:${region}:${a.account}:${name}`;
      const op = r.operation.replace(/Batch$/, '');
      if (op === 'ListQueues') {
        add('sqs:ListQueues', '*');
        break;
      }
      if (op === 'CreateQueue') {
        add('sqs:CreateQueue', arn, { ...tagContext('aws:RequestTag', f.Tags), ...tagKeys(f.Tags) });
        if (f.Tags) add('sqs:TagQueue', arn, { ...tagContext('aws:RequestTag', f.Tags), ...tagKeys(f.Tags) }, true);
        break;
      }
      add(`sqs:${op}`, arn, tagContext('aws:ResourceTag', seen.queueTags.get(name)));
      break;
    }
    case 'DynamoDB': {
      const op = DOC_OPS[r.operation] ?? r.operation;
      const tableArn = (t: string | undefined) => `arn:aws:dynamodb:${region}:${a.account}:table/${t ?? a.table}`;
      if (op === 'TransactWriteItems' || op === 'TransactGetItems') {
        const map: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };
        for (const t of f.TransactItems ?? []) {
          add(`dynamodb:${map[t.kind] ?? t.kind}`, tableArn(t.TableName), t.pk ? { 'dynamodb:LeadingKeys': [t.pk] } : {});
        }
        break;
      }
      if (op === 'BatchGetItem' || op === 'BatchWriteItem') {
        for (const [table, pks] of Object.entries((f.RequestItems ?? {}) as Record<string, string[]>)) {
          add(`dynamodb:${op}`, tableArn(table), pks.length ? { 'dynamodb:LeadingKeys': pks } : {});
        }
        break;
      }
      // A Query of an index is authorised on the index: arn:...:table/T/index/I.
      const resource = f.IndexName ? `${tableArn(f.TableName)}/index/${f.IndexName}` : tableArn(f.TableName);
      add(`dynamodb:${op}`, resource, f.LeadingKeys ? { 'dynamodb:LeadingKeys': f.LeadingKeys } : {});
      break;
    }
    case 'S3': {
      const bucket = f.Bucket ?? a.bucket;
      const obj = (key: string) => `arn:aws:s3:::${bucket}/${key}`;
      const viaS3 = { 'kms:ViaService': `s3.${region}.amazonaws.com` };
      switch (r.operation) {
        case 'GetObject':
          add('s3:GetObject', obj(f.Key));
          add('kms:Decrypt', a.kmsKeyArn, viaS3, true);
          break;
        case 'HeadObject':
          add('s3:GetObject', obj(f.Key));
          break;
        case 'PutObject':
        case 'CreateMultipartUpload':
          add('s3:PutObject', obj(f.Key));
          add('kms:GenerateDataKey', a.kmsKeyArn, viaS3, true);
          break;
        case 'UploadPart':
        case 'CompleteMultipartUpload':
          add('s3:PutObject', obj(f.Key));
          break;
        case 'AbortMultipartUpload':
          add('s3:AbortMultipartUpload', obj(f.Key));
          break;
        case 'ListObjectsV2':
        case 'ListObjects':
          add('s3:ListBucket', `arn:aws:s3:::${bucket}`, f.Prefix ? { 's3:prefix': f.Prefix } : {});
          break;
        case 'HeadBucket':
          add('s3:ListBucket', `arn:aws:s3:::${bucket}`);
          break;
        case 'DeleteObjects':
          for (const k of f.DeleteKeys ?? []) add('s3:DeleteObject', obj(k));
          break;
        case 'DeleteObject':
          add('s3:DeleteObject', obj(f.Key));
          break;
        default:
          add(`s3:${r.operation}`, obj(f.Key ?? '*'));
      }
      break;
    }
    case 'AutoScaling': {
      const groupArn = (name: string) => `arn:aws:autoscaling:${region}:${a.account}:autoScalingGroup:${GROUP_UUID}:autoScalingGroupName/${name}`;
      if (r.operation.startsWith('Describe')) {
        add(`autoscaling:${r.operation}`, '*');
        break;
      }
      if (r.operation === 'CreateAutoScalingGroup') {
        const arn = groupArn(f.AutoScalingGroupName);
        const ctx = { ...tagContext('aws:RequestTag', f.Tags), ...tagKeys(f.Tags) };
        add('autoscaling:CreateAutoScalingGroup', arn, ctx);
        if (f.Tags) add('autoscaling:CreateOrUpdateTags', arn, ctx, true);
        // Auto Scaling checks that the caller may launch from the template and pass its role.
        const lt = f.LaunchTemplate?.LaunchTemplateName as string | undefined;
        const ltArn = `arn:aws:ec2:${region}:${a.account}:launch-template/lt-0123456789abcdef0`;
        // RunInstances is authorised on each resource it uses or makes.
        for (const res of ['launch-template/lt-0123456789abcdef0', 'instance/*', 'volume/*', 'network-interface/*', 'subnet/subnet-0123456789abcdef0', 'security-group/sg-0123456789abcdef0']) {
          add('ec2:RunInstances', `arn:aws:ec2:${region}:${a.account}:${res}`, { 'ec2:LaunchTemplate': ltArn }, true);
        }
        add('ec2:RunInstances', `arn:aws:ec2:${region}::image/ami-0123456789abcdef0`, { 'ec2:LaunchTemplate': ltArn }, true);
        const profile = lt ? seen.templateProfiles.get(lt) : undefined;
        if (profile) add('iam:PassRole', profile.replace(':instance-profile/', ':role/'), { 'iam:PassedToService': 'ec2.amazonaws.com' }, true);
        add('iam:CreateServiceLinkedRole', `arn:aws:iam::${a.account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`, { 'iam:AWSServiceName': 'autoscaling.amazonaws.com' }, true);
        break;
      }
      let group: string | undefined = f.AutoScalingGroupName;
      if (!group && r.who !== 'cli') group = (JSON.parse(r.who) as { group?: string }).group;
      add(`autoscaling:${r.operation}`, groupArn(group ?? 'unknown'), tagContext('autoscaling:ResourceTag', group ? seen.groupTags.get(group) : undefined));
      break;
    }
    case 'EC2': {
      if (r.operation.startsWith('Describe')) {
        add(`ec2:${r.operation}`, '*');
        break;
      }
      const ltArn = `arn:aws:ec2:${region}:${a.account}:launch-template/lt-0123456789abcdef0`;
      if (r.operation === 'CreateLaunchTemplate') {
        const tags = (f.TagSpecifications ?? []).find((t: any) => t.ResourceType === 'launch-template')?.Tags;
        add('ec2:CreateLaunchTemplate', ltArn, { ...tagContext('aws:RequestTag', tags), ...tagKeys(tags) });
        if (tags) add('ec2:CreateTags', ltArn, { 'ec2:CreateAction': 'CreateLaunchTemplate', ...tagContext('aws:RequestTag', tags), ...tagKeys(tags) }, true);
        break;
      }
      if (r.operation === 'DeleteLaunchTemplate') {
        // gq deletes only templates it found by their gq:job tag (fleet.ts templates()).
        add('ec2:DeleteLaunchTemplate', ltArn, { 'aws:ResourceTag/gq:job': 'found-by-tag' });
        break;
      }
      if (r.operation === 'CreateTags') {
        const who = r.who === 'cli' ? {} : (JSON.parse(r.who) as { job?: string });
        for (const id of f.Resources ?? []) {
          add('ec2:CreateTags', `arn:aws:ec2:${region}:${a.account}:instance/${id}`, {
            ...tagContext('aws:RequestTag', f.Tags),
            ...tagKeys(f.Tags),
            ...(who.job ? { 'aws:ResourceTag/gq:job': who.job } : {}),
          });
        }
        break;
      }
      if (r.operation === 'GetConsoleOutput') {
        // gq reads the console of instances it found by their gq:job tag (fleet.ts launched()).
        add('ec2:GetConsoleOutput', `arn:aws:ec2:${region}:${a.account}:instance/${f.InstanceId}`, { 'aws:ResourceTag/gq:job': 'found-by-tag' });
        break;
      }
      add(`ec2:${r.operation}`, '*');
      break;
    }
    case 'SSM': {
      // Public parameters (/aws/service/...) have account-less ARNs; the account's own have its id.
      const name = String(f.Name ?? '').replace(/^\//, '');
      const account = name.startsWith('aws/service/') ? '' : a.account;
      add(`ssm:${r.operation}`, `arn:aws:ssm:${region}:${account}:parameter/${name}`);
      break;
    }
    case 'IAM': {
      const role = (name: string) => `arn:aws:iam::${a.account}:role${f.Path ?? a.jobRolePath}${name}`;
      const profile = (name: string) => `arn:aws:iam::${a.account}:instance-profile${f.Path ?? a.jobRolePath}${name}`;
      switch (r.operation) {
        case 'CreateRole':
          add('iam:CreateRole', role(f.RoleName), { ...(f.PermissionsBoundary ? { 'iam:PermissionsBoundary': f.PermissionsBoundary } : {}) });
          if (f.Tags) add('iam:TagRole', role(f.RoleName), { ...tagContext('aws:RequestTag', f.Tags), ...tagKeys(f.Tags) }, true);
          break;
        case 'AttachRolePolicy':
        case 'DetachRolePolicy':
          add(`iam:${r.operation}`, role(f.RoleName), { 'iam:PolicyARN': f.PolicyArn });
          break;
        case 'GetRole':
        case 'DeleteRole':
        case 'ListAttachedRolePolicies':
          add(`iam:${r.operation}`, role(f.RoleName));
          break;
        case 'AddRoleToInstanceProfile':
          add('iam:AddRoleToInstanceProfile', profile(f.InstanceProfileName));
          add('iam:PassRole', role(f.RoleName), {}, true);
          break;
        case 'RemoveRoleFromInstanceProfile':
        case 'GetInstanceProfile':
        case 'CreateInstanceProfile':
        case 'DeleteInstanceProfile':
          add(`iam:${r.operation}`, profile(f.InstanceProfileName));
          break;
        default:
          add(`iam:${r.operation}`, '*');
      }
      break;
    }
    case 'CloudFormation':
      add(`cloudformation:${r.operation}`, a.stackId);
      break;
    case 'ServiceQuotas':
      add(`servicequotas:${r.operation}`, '*');
      break;
    default:
      add(`${r.service.toLowerCase()}:${r.operation}`, '*');
  }
  return out;
}

export interface Principal {
  /** Identity policies (documents). */
  policies: Array<{ name: string; document: unknown }>;
  boundary?: { name: string; document: unknown };
  arn: string;
  /** Context keys of the principal: aws:PrincipalTag/gq-job, ec2:RoleDelivery... */
  context: Record<string, string>;
}

/** Stands for the empty account of AWS-owned public SSM parameters (see evaluate). */
const PUBLIC_PARAMETER_ACCOUNT = '000000000000';

export interface Verdict {
  request: IamRequest;
  result: string;
  /** Simulator errors (unknown action, bad context key), when there were any. */
  errors?: string;
}

/**
 * Evaluate one request for a principal with the simulator. KMS requests are evaluated with the
 * key's policy as the resource policy (KMS, unlike other services, needs the key policy to
 * allow the account before IAM policies count): `keyPolicy`.
 */
export async function evaluate(p: Principal, req: IamRequest, account: string, keyPolicy?: unknown): Promise<Verdict> {
  // Simulator fidelity: iam-simulate finds no resource type for an account-less ARN (AWS's public
  // SSM parameters, arn:aws:ssm:REGION::parameter/aws/service/...: "no.resource.types"). Such a
  // request is evaluated with one placeholder account written into the request's ARN and into
  // the policies' account-less ARNs alike, so the simulator still does all the matching.
  if (/^arn:[^:]+:ssm:[^:]*::parameter\//.test(req.resource)) {
    const fill = (v: unknown): unknown => JSON.parse(JSON.stringify(v).replace(/(arn:[^:"]+:ssm:[^:"]*)::parameter\//g, `$1:${PUBLIC_PARAMETER_ACCOUNT}:parameter/`));
    return evaluate(
      { ...p, policies: p.policies.map((x) => ({ ...x, document: fill(x.document) })), ...(p.boundary ? { boundary: { ...p.boundary, document: fill(p.boundary.document) } } : {}) },
      { ...req, resource: fill(req.resource) as string },
      account,
      keyPolicy,
    );
  }
  const r = await runSimulation(
    {
      request: {
        principal: p.arn,
        action: req.action,
        resource: { resource: req.resource, accountId: account },
        contextVariables: { ...p.context, ...req.context },
      },
      identityPolicies: p.policies.map((x) => ({ name: x.name, policy: x.document })),
      ...(p.boundary ? { permissionBoundaryPolicies: [{ name: p.boundary.name, policy: p.boundary.document }] } : {}),
      ...(req.action.startsWith('kms:') && keyPolicy ? { resourcePolicy: keyPolicy } : {}),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (r.resultType === 'error') return { request: req, result: 'Error', errors: JSON.stringify(r.errors) };
  return { request: req, result: r.overallResult };
}

/** The default version's document of a managed policy, as IAM (here moto) stores it after CloudFormation resolved it. */
export async function readPolicy(iam: { send: (c: any) => Promise<any> }, arn: string): Promise<unknown> {
  const { GetPolicyCommand, GetPolicyVersionCommand } = await import('@aws-sdk/client-iam');
  const p = await iam.send(new GetPolicyCommand({ PolicyArn: arn }));
  const v = await iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: p.Policy.DefaultVersionId }));
  const doc: string = v.PolicyVersion.Document;
  // IAM returns the document URL-encoded (RFC 3986); moto returns it as it was given.
  try {
    return JSON.parse(doc);
  } catch {
    return JSON.parse(decodeURIComponent(doc));
  }
}

export interface StackPolicies {
  agent: unknown;
  boundary: unknown;
  user: unknown;
  /** The artifact key's key policy. */
  key?: unknown;
}

/**
 * The key policy of a KMS key, read from moto with one plain JSON request (KMS's GetKeyPolicy;
 * moto does not check signatures, and gq has no KMS client of its own).
 */
export async function readKeyPolicy(endpoint: string, keyArn: string, region: string): Promise<unknown> {
  const r = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': 'TrentService.GetKeyPolicy',
      Authorization: `AWS4-HMAC-SHA256 Credential=testing/20250101/${region}/kms/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify({ KeyId: keyArn, PolicyName: 'default' }),
  });
  if (!r.ok) throw new Error(`GetKeyPolicy: HTTP ${r.status} ${await r.text()}`);
  const policy = ((await r.json()) as { Policy: unknown }).Policy;
  return typeof policy === 'string' ? JSON.parse(policy) : policy;
}

/** The agents' principal for a job: its role's policy and boundary, its gq-job tag, IMDSv2 credentials. */
export function agentPrincipal(p: StackPolicies, account: string, region: string, job: string, instance = 'i-0123456789abcdef0'): Principal {
  return {
    arn: `arn:aws:sts::${account}:assumed-role/gq-${job}-${region}/${instance}`,
    policies: [{ name: 'JobAgentPolicy', document: p.agent }],
    boundary: { name: 'JobRoleBoundary', document: p.boundary },
    context: { 'aws:PrincipalTag/gq-job': job, 'ec2:RoleDelivery': '2.0' },
  };
}

/** The person running gq, with the stack's user policy only. */
export function userPrincipal(p: StackPolicies, account: string): Principal {
  return { arn: `arn:aws:iam::${account}:user/gq-user`, policies: [{ name: 'UserPolicy', document: p.user }], context: {} };
}
