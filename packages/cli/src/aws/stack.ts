/**
 * The once-per-account CloudFormation stack (infra/gq.yaml): create or update it and wait for it,
 * and read its outputs. The template lives in stack-template.ts, the error classification in
 * stack-errors.ts; the output mapping here is pure, and the I/O functions are thin and take their
 * SDK clients as arguments.
 */
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
import { GqError, UserError } from '@gq/common';
import { installCallLog } from '@gq/common/aws/index';
import { errMessage, errName, isNoUpdatesError, isStackMissingError, rethrowAsUserError } from './stack-errors.js';
import { parseTemplate, readTemplate } from './stack-template.js';

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
