/**
 * The once-per-account CloudFormation stack (infra/gq.yaml): read the template shipped with gq,
 * create or update the stack and wait for it, and read its outputs. Pure helpers (template
 * parsing, error classification, output mapping) are exported for the tests; the I/O functions
 * are thin and take their SDK clients as arguments.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
  waitUntilStackCreateComplete,
  waitUntilStackDeleteComplete,
  waitUntilStackUpdateComplete,
  type Parameter,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import { DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { STSClient } from '@aws-sdk/client-sts';
import { parse as parseYaml, type ScalarTag, type CollectionTag } from 'yaml';
import { GqError, UserError } from '@gq/common';
import { installCallLog } from '@gq/common/aws/index';
import { EXPIRED_CREDENTIALS, NO_CREDENTIALS, NO_SSO_TOKEN, REJECTED_CREDENTIALS } from '../credential-errors.js';

// ---------------------------------------------------------------------------------------------
// The template

/**
 * Where infra/gq.yaml may be, relative to this module. The compiled file is
 * packages/submitter/dist/aws/stack.js and the source is packages/submitter/src/aws/stack.ts:
 * both are four folders below the repository root, so one relative path serves the built CLI
 * and the tests that import the source. The second candidate is a copy inside the package
 * (packages/submitter/infra/gq.yaml), for a packed package that carries its own copy.
 */
export function templateCandidates(): string[] {
  return [
    fileURLToPath(new URL('../../../../infra/gq.yaml', import.meta.url)),
    fileURLToPath(new URL('../../infra/gq.yaml', import.meta.url)),
  ];
}

/** Path of the shipped template (the first candidate that exists). */
export function templatePath(): string {
  const candidates = templateCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new GqError(`gq's CloudFormation template is missing; looked for: ${candidates.join(', ')}`);
  }
  return found;
}

/** The text of infra/gq.yaml as shipped with this gq. */
export function readTemplate(): string {
  return readFileSync(templatePath(), 'utf8');
}

/** CloudFormation's YAML short forms (!Ref, !Sub, ...), mapped to their long JSON forms. */
const INTRINSICS = [
  'And', 'Base64', 'Cidr', 'Condition', 'Equals', 'FindInMap', 'GetAtt', 'GetAZs', 'If',
  'ImportValue', 'Join', 'Not', 'Or', 'Ref', 'Select', 'Split', 'Sub', 'Transform', 'ToJsonString',
  'Length',
] as const;

function longName(name: string): string {
  return name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
}

function cfnTags(): Array<ScalarTag | CollectionTag> {
  const tags: Array<ScalarTag | CollectionTag> = [];
  for (const name of INTRINSICS) {
    const key = longName(name);
    tags.push({
      tag: `!${name}`,
      resolve: (str: string) => {
        // !GetAtt Res.Attr is the short form of Fn::GetAtt: [Res, Attr].
        if (name === 'GetAtt') {
          const dot = str.indexOf('.');
          return { [key]: dot < 0 ? [str] : [str.slice(0, dot), str.slice(dot + 1)] };
        }
        return { [key]: str };
      },
    });
    for (const collection of ['seq', 'map'] as const) {
      tags.push({
        tag: `!${name}`,
        collection,
        resolve: (node) => ({ [key]: node.toJSON() }) as never,
      });
    }
  }
  return tags;
}

/** A parsed template: plain JSON with intrinsic functions in their long form ({"Fn::Sub": ...}). */
export type CfnTemplate = {
  Parameters?: Record<string, { Type: string; Default?: string; [k: string]: unknown }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; [k: string]: unknown }>;
  Outputs?: Record<string, { Value: unknown; Condition?: string; [k: string]: unknown }>;
  [k: string]: unknown;
};

/** Parse a CloudFormation YAML template, short-form intrinsics included. */
export function parseTemplate(text: string): CfnTemplate {
  const doc = parseYaml(text, { customTags: cfnTags(), prettyErrors: true }) as CfnTemplate | null;
  if (!doc || typeof doc !== 'object' || !doc.Resources) {
    throw new GqError('CloudFormation template has no Resources section');
  }
  return doc;
}

/** The TemplateVersion output of a template (the shipped one by default). */
export function templateVersion(text: string = readTemplate()): string {
  const v = parseTemplate(text).Outputs?.TemplateVersion?.Value;
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw new GqError('CloudFormation template has no literal TemplateVersion output');
  }
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Clients

export interface SetupClients {
  cfn: CloudFormationClient;
  ec2: EC2Client;
  sts: STSClient;
  quotas: ServiceQuotasClient;
}

/**
 * SDK clients for setup and doctor. Credentials come from the SDK's default chain (env,
 * profile, SSO, IMDS); AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) are honoured by the SDK
 * itself, which is how the tests point them at moto.
 */
export function makeSetupClients(region: string, opts: { profile?: string } = {}): SetupClients {
  const config = { region, ...(opts.profile ? { profile: opts.profile } : {}) };
  const c = {
    cfn: new CloudFormationClient(config),
    ec2: new EC2Client(config),
    sts: new STSClient(config),
    quotas: new ServiceQuotasClient(config),
  };
  // Tests only (GQ_TEST_AWS_CALL_LOG): the policy-coverage record.
  installCallLog(c.cfn, 'CloudFormation');
  installCallLog(c.ec2, 'EC2');
  installCallLog(c.sts, 'STS');
  installCallLog(c.quotas, 'ServiceQuotas');
  return c;
}

/** Close the clients' sockets (so that a command can return without waiting for keep-alive). */
export function destroySetupClients(c: SetupClients): void {
  c.cfn.destroy();
  c.ec2.destroy();
  c.sts.destroy();
  c.quotas.destroy();
}

// ---------------------------------------------------------------------------------------------
// Error classification

function errName(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown; code?: unknown };
  return String(e?.name ?? e?.Code ?? e?.code ?? '');
}

function errMessage(err: unknown): string {
  return String((err as { message?: unknown })?.message ?? err);
}

/**
 * "No updates are to be performed." CloudFormation has no error code of its own for this: it
 * answers UpdateStack with the generic ValidationError (HTTP 400), the same code it uses for a
 * missing stack or a bad parameter. So the name/Code tells us it is a ValidationError and only
 * the message, as a last resort, tells which one. The message has been stable for a decade.
 */
export function isNoUpdatesError(err: unknown): boolean {
  const name = errName(err);
  if (name && name !== 'ValidationError') return false;
  return /no updates are to be performed/i.test(errMessage(err));
}

/** DescribeStacks on an unknown name: ValidationError "Stack with id X does not exist". */
export function isStackMissingError(err: unknown): boolean {
  const name = errName(err);
  if (name && name !== 'ValidationError') return false;
  return /does not exist/i.test(errMessage(err));
}

const CREDENTIALS_FIX =
  'Run `aws configure` (access keys) or `aws sso login` (SSO profile), or set AWS_PROFILE to a profile that works.';

/**
 * If `err` means "no usable AWS credentials", a one-line explanation with the fix; else
 * undefined. Never includes a credential value (only the error's name and our own words).
 */
export function credentialProblem(err: unknown): string | undefined {
  const name = errName(err);
  const msg = errMessage(err);
  if (NO_CREDENTIALS.has(name) || /could not load credentials/i.test(msg)) {
    return `No AWS credentials found. ${CREDENTIALS_FIX}`;
  }
  if (NO_SSO_TOKEN.has(name) || /sso.*(expired|token)|token.*sso/i.test(msg)) {
    return 'The AWS SSO session has expired or is missing. Run `aws sso login` (with --profile if you use one).';
  }
  if (EXPIRED_CREDENTIALS.has(name) || /expired/i.test(msg)) {
    return `The AWS credentials have expired (${name || 'expired'}). ${CREDENTIALS_FIX}`;
  }
  if (REJECTED_CREDENTIALS.has(name)) {
    return `AWS rejected the credentials (${name}). ${CREDENTIALS_FIX}`;
  }
  return undefined;
}

/** Turn a credentials error into a UserError; anything else is rethrown unchanged. */
export function rethrowAsUserError(err: unknown): never {
  const problem = credentialProblem(err);
  if (problem) {
    // The problem first, the fix on the hint line (the CLI may explain it further, see credentials.ts).
    const [first, ...rest] = problem.split(/(?<=[.)]) (?=[A-Z`])/);
    throw new UserError(first!, { hint: rest.join(' ') || CREDENTIALS_FIX, cause: err });
  }
  if (errName(err) === 'AccessDenied' || errName(err) === 'AccessDeniedException' || /not authorized/i.test(errMessage(err))) {
    throw new UserError(`AWS refused the request: ${errName(err)}`, {
      hint: '`gq setup` needs permission to create CloudFormation stacks with IAM, S3, DynamoDB, KMS and EC2 resources.',
      cause: err,
    });
  }
  throw err;
}

// ---------------------------------------------------------------------------------------------
// Stack I/O

/** The stack, or undefined when there is none of that name in the client's region. */
export async function describeStack(cfn: CloudFormationClient, stackName: string): Promise<Stack | undefined> {
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return out.Stacks?.[0];
  } catch (err) {
    if (isStackMissingError(err)) return undefined;
    throw err;
  }
}

export interface StackOutputs {
  bucket: string;
  table: string;
  securityGroupId: string;
  /** Managed policy of the per-job agent roles. */
  jobAgentPolicyArn: string;
  /** Permissions boundary of the per-job agent roles. */
  jobRoleBoundaryArn: string;
  /** IAM path of the per-job roles and instance profiles (/gq/<stack>/). */
  jobRolePath: string;
  /** Managed policy for the people who run gq. */
  userPolicyArn?: string;
  /** Subnets the stack names for the agents (else every subnet of the VPC). */
  subnetIds?: string[];
  /** 'none': launch templates ask for no public IPv4 address. */
  publicIpv4?: 'subnet-default' | 'none';
  kmsKeyArn?: string;
  templateVersion?: string;
}

/** Outputs of a deployed stack as a record (pure). */
export function outputMap(stack: Stack): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of stack.Outputs ?? []) {
    if (o.OutputKey && o.OutputValue !== undefined) out[o.OutputKey] = o.OutputValue;
  }
  return out;
}

const USABLE_STATES = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE']);

/** Map a stack to gq's outputs, or explain (UserError) why it cannot be used (pure). */
export function outputsFromStack(stack: Stack, stackName: string, region: string): StackOutputs {
  const status = stack.StackStatus ?? 'UNKNOWN';
  if (!USABLE_STATES.has(status)) {
    throw new UserError(`The gq stack "${stackName}" in ${region} is in state ${status}.`, {
      hint: 'Run `gq setup` (again) once it is no longer in progress.',
    });
  }
  const o = outputMap(stack);
  const missing = ['BucketName', 'TableName', 'JobAgentPolicyArn', 'JobRoleBoundaryArn', 'JobRolePath', 'SecurityGroupId'].filter((k) => !o[k]);
  if (missing.length) {
    throw new UserError(`The gq stack "${stackName}" in ${region} lacks output(s) ${missing.join(', ')}.`, {
      hint:
        missing.includes('SecurityGroupId') && missing.length === 1
          ? 'It was deployed without a VPC. Run `gq setup` (it uses the default VPC) or `gq setup --vpc-id vpc-...`.'
          : 'Run `gq setup` to bring it up to date.',
    });
  }
  return {
    bucket: o.BucketName!,
    table: o.TableName!,
    securityGroupId: o.SecurityGroupId!,
    jobAgentPolicyArn: o.JobAgentPolicyArn!,
    jobRoleBoundaryArn: o.JobRoleBoundaryArn!,
    jobRolePath: o.JobRolePath!,
    ...(o.UserPolicyArn ? { userPolicyArn: o.UserPolicyArn } : {}),
    ...(o.SubnetIds ? { subnetIds: o.SubnetIds.split(',').filter(Boolean) } : {}),
    ...(o.PublicIpv4 === 'none' || o.PublicIpv4 === 'subnet-default' ? { publicIpv4: o.PublicIpv4 } : {}),
    ...(o.KmsKeyArn ? { kmsKeyArn: o.KmsKeyArn } : {}),
    ...(o.TemplateVersion ? { templateVersion: o.TemplateVersion } : {}),
  };
}

/** The outputs of the gq stack; a UserError telling to run `gq setup` when it is missing. */
export async function readStackOutputs({ cfn, stackName }: { cfn: CloudFormationClient; stackName: string }): Promise<StackOutputs> {
  const region = await cfn.config.region();
  let stack: Stack | undefined;
  try {
    stack = await describeStack(cfn, stackName);
  } catch (err) {
    rethrowAsUserError(err);
  }
  if (!stack) {
    throw new UserError(`No gq stack "${stackName}" in ${region}.`, {
      hint: `Run \`gq setup\` to create it (once per account and region)${stackName === 'gq' ? '' : ` with --stack ${stackName}`}.`,
    });
  }
  return outputsFromStack(stack, stackName, region);
}

/** The account's default VPC in the client's region, if it has one. */
export async function findDefaultVpc(ec2: EC2Client): Promise<string | undefined> {
  const out = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }));
  return out.Vpcs?.[0]?.VpcId;
}

/**
 * The Parameters of an UpdateStack (pure): the given values, and for every other parameter of
 * the new template that the stack already has, its previous value (UpdateStack would otherwise
 * reset it to the template default, silently undoing an earlier `gq setup --...`).
 */
export function updateParameters(
  params: Record<string, string>,
  templateParams: readonly string[],
  existing: Stack,
): Parameter[] {
  const had = new Set((existing.Parameters ?? []).map((p) => p.ParameterKey));
  const out: Parameter[] = [];
  for (const key of templateParams) {
    if (params[key] !== undefined) out.push({ ParameterKey: key, ParameterValue: params[key] });
    else if (had.has(key)) out.push({ ParameterKey: key, UsePreviousValue: true });
  }
  return out;
}

export type DeployAction = 'created' | 'updated' | 'unchanged';

export interface DeployOptions {
  cfn: CloudFormationClient;
  /** When given and params has no VpcId: keep the stack's VPC, else use the default VPC. */
  ec2?: EC2Client;
  stackName: string;
  params?: Record<string, string>;
  /** Defaults to the shipped template. */
  templateBody?: string;
  /** Progress lines for the user. */
  onProgress?: (line: string) => void;
  /** Waiter tuning, seconds (defaults: 5, 20, 1800). */
  minDelay?: number;
  maxDelay?: number;
  maxWaitTime?: number;
}

const IN_PROGRESS = /_IN_PROGRESS$/;

/**
 * Create the stack, or update it to the shipped template, and wait until it is done.
 * "No updates are to be performed" is a success (`unchanged`). A stack left in
 * ROLLBACK_COMPLETE by a failed first create cannot be updated: it is deleted and created anew.
 * Failures become a UserError listing the resources that failed and why.
 */
export async function deployStack(opts: DeployOptions): Promise<{ action: DeployAction; outputs: StackOutputs }> {
  const { cfn, stackName } = opts;
  const body = opts.templateBody ?? readTemplate();
  // CloudFormation takes at most 51,200 bytes of TemplateBody; larger needs a TemplateURL.
  if (Buffer.byteLength(body) > 51_200) throw new GqError('gq.yaml is over the 51,200-byte TemplateBody limit');
  const templateParams = Object.keys(parseTemplate(body).Parameters ?? {});
  const progress = opts.onProgress ?? (() => {});
  const waiter = {
    client: cfn,
    minDelay: opts.minDelay ?? 5,
    maxDelay: opts.maxDelay ?? 20,
    maxWaitTime: opts.maxWaitTime ?? 1800,
  };
  const region = await cfn.config.region();
  const params = { ...(opts.params ?? {}) };
  for (const k of Object.keys(params)) {
    if (!templateParams.includes(k)) throw new GqError(`Unknown stack parameter ${k}`);
  }

  try {
    let existing = await describeStack(cfn, stackName);
    if (existing && IN_PROGRESS.test(existing.StackStatus ?? '')) {
      throw new UserError(`The gq stack "${stackName}" in ${region} is busy (${existing.StackStatus}).`, {
        hint: 'Wait until it finishes, then run `gq setup` again.',
      });
    }
    if (existing?.StackStatus === 'ROLLBACK_COMPLETE') {
      progress(`Stack ${stackName} is left over from a failed create; deleting it first.`);
      await cfn.send(new DeleteStackCommand({ StackName: stackName }));
      await waitOrExplain(() => waitUntilStackDeleteComplete(waiter, { StackName: stackName }), cfn, stackName, 'delete');
      existing = undefined;
    }

    if (opts.ec2 && params.VpcId === undefined && templateParams.includes('VpcId')) {
      const previous = existing?.Parameters?.find((p) => p.ParameterKey === 'VpcId')?.ParameterValue;
      if (!previous) {
        const vpc = await findDefaultVpc(opts.ec2);
        if (!vpc) {
          throw new UserError(`The account has no default VPC in ${region}.`, {
            hint: 'Pass the VPC for the agents: `gq setup --vpc-id vpc-...`.',
          });
        }
        params.VpcId = vpc;
      }
    }

    const common = {
      StackName: stackName,
      TemplateBody: body,
      // The template creates an IAM role and instance profile with generated names.
      Capabilities: ['CAPABILITY_IAM' as const],
      Tags: [{ Key: 'gq:stack', Value: stackName }],
    };

    if (!existing) {
      progress(`Creating stack ${stackName} in ${region} ...`);
      try {
        await cfn.send(
          new CreateStackCommand({
            ...common,
            Parameters: Object.entries(params).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue })),
            OnFailure: 'ROLLBACK',
          }),
        );
      } catch (err) {
        // A concurrent `gq setup`, or the SDK retrying a create whose answer was lost: the stack
        // is being created all the same, so wait for it like for our own.
        if (errName(err) !== 'AlreadyExistsException') throw err;
      }
      await waitOrExplain(() => waitUntilStackCreateComplete(waiter, { StackName: stackName }), cfn, stackName, 'create');
      return { action: 'created', outputs: await readStackOutputs({ cfn, stackName }) };
    }

    progress(`Updating stack ${stackName} in ${region} ...`);
    try {
      await cfn.send(new UpdateStackCommand({ ...common, Parameters: updateParameters(params, templateParams, existing) }));
    } catch (err) {
      if (isNoUpdatesError(err)) {
        return { action: 'unchanged', outputs: outputsFromStack(existing, stackName, region) };
      }
      throw err;
    }
    await waitOrExplain(() => waitUntilStackUpdateComplete(waiter, { StackName: stackName }), cfn, stackName, 'update');
    return { action: 'updated', outputs: await readStackOutputs({ cfn, stackName }) };
  } catch (err) {
    if (err instanceof GqError) throw err;
    rethrowAsUserError(err);
  }
}

async function waitOrExplain(
  wait: () => Promise<unknown>,
  cfn: CloudFormationClient,
  stackName: string,
  what: 'create' | 'update' | 'delete',
): Promise<void> {
  try {
    await wait();
  } catch (err) {
    // The waiter throws on a failure state (e.g. ROLLBACK_COMPLETE) and on time-out.
    const details = await failureReasons(cfn, stackName).catch(() => [] as string[]);
    const stack = await describeStack(cfn, stackName).catch(() => undefined);
    throw new UserError(
      `Stack ${what} of "${stackName}" did not complete (state ${stack?.StackStatus ?? 'unknown'}).`,
      {
        details: details.length ? details : [errMessage(err).split('\n')[0] ?? ''],
        hint: 'Fix the cause above, then run `gq setup` again. The CloudFormation console shows every event of the stack.',
        cause: err,
      },
    );
  }
}

/** "Resource: reason" for the failed events of the stack's latest operation, oldest first. */
async function failureReasons(cfn: CloudFormationClient, stackName: string): Promise<string[]> {
  const out = await cfn.send(new DescribeStackEventsCommand({ StackName: stackName }));
  const reasons: string[] = [];
  for (const e of out.StackEvents ?? []) {
    if (e.ResourceStatus?.endsWith('_FAILED') && e.ResourceStatusReason) {
      reasons.push(`${e.LogicalResourceId}: ${e.ResourceStatusReason}`);
    }
    // Events are newest first; stop at the start of the operation that failed.
    if (e.LogicalResourceId === stackName && /^(CREATE|UPDATE|DELETE)_IN_PROGRESS$/.test(e.ResourceStatus ?? '')) break;
  }
  return reasons.reverse().slice(0, 10);
}
