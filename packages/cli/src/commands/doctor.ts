/**
 * `gq doctor`: check, one line each, that this machine can run a job on AWS before any money is
 * spent: region, credentials, the gq stack and its version, each subnet's way to the AWS
 * endpoints, and for each instance type (of a job file, or --instance-type) that EC2 has it, that
 * its AMI exists and is built for its architecture, that it is offered in the subnets' zones, and
 * the On-Demand vCPU quota. Each failed check says how to fix it. Exit code 0 when nothing failed,
 * 1 otherwise; a check that could not be made (e.g. no permission to read quotas) is a warning.
 *
 * The decisions are pure functions (aws/network.ts, aws/ami.ts, aws/region.ts); this file only
 * makes the calls and prints.
 *
 * No secret is ever printed: only account ids, ARNs, resource names and error names, and every
 * line goes through the logger's redaction of registered secrets (the credentials in the
 * environment are registered here) as a last line of defence.
 */
import {
  GetAWSDefaultServiceQuotaCommand,
  GetServiceQuotaCommand,
  type ServiceQuotasClient,
} from '@aws-sdk/client-service-quotas';
import { SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { LOCAL_INSTANCE_TYPE, parseJobFile, redactText, registerSecret, UserError } from '@gq/common';
import { installCallLog } from '@gq/common/aws/index';
import type { CommandContext } from '../context.js';
import { destroySetupClients, makeSetupClients, readStackOutputs, type StackOutputs } from '../aws/stack.js';
import { credentialProblem } from '../aws/stack-errors.js';
import { templateVersion } from '../aws/stack-template.js';
import { amiSettingFor, resolveAmi } from '../aws/ami.js';
import { describeTypes, type TypeInfo } from '../aws/instance-types.js';
import { awsConfigFile, findRegion, noRegionError, profileName } from '../aws/region.js';
import { describeEndpoints, describeSubnetRoutes, offeredZones, offeringVerdict, stackSubnets, subnetReach } from '../aws/network.js';

export interface DoctorArgs {
  stack: string;
  /** Default: the region gq resolves (aws/region.ts). */
  region?: string;
  /** Instance type to check when no job file is given (default DEFAULT_DOCTOR_INSTANCE_TYPE). */
  instanceType?: string;
  /** Job file whose instance types are checked. */
  jobFile?: string;
}

export const DEFAULT_DOCTOR_INSTANCE_TYPE = 'm5.large';

/** Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances, in vCPUs. */
export const ON_DEMAND_STANDARD_VCPU_QUOTA = 'L-1216C47A';

export type CheckStatus = 'ok' | 'FAIL' | 'warn' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

/** One printed line (pure): status, check name, detail, and the fix for a failure. */
export function formatCheck(r: CheckResult): string {
  const head = `${r.status.padEnd(4)}  ${r.name}: ${r.detail}`;
  return r.fix && r.status !== 'ok' ? `${head}\n      fix: ${r.fix}` : head;
}

/** The instance types to check: those of the job file, else the one given, else the default. */
async function typesToCheck(args: DoctorArgs): Promise<string[]> {
  if (args.jobFile) {
    const tasks = await parseJobFile(args.jobFile, { backend: 'aws' });
    return [...new Set(tasks.map((t) => t.instanceType))].sort();
  }
  return [args.instanceType ?? DEFAULT_DOCTOR_INSTANCE_TYPE];
}

export async function runDoctor(ctx: CommandContext, args: DoctorArgs): Promise<number> {
  registerSecret(process.env.AWS_SECRET_ACCESS_KEY);
  registerSecret(process.env.AWS_SESSION_TOKEN);
  const results: CheckResult[] = [];
  const report = (r: CheckResult): CheckResult => {
    results.push(r);
    ctx.io.out(redactText(formatCheck(r)));
    return r;
  };
  // A bad job file is the user's input error: say so before anything else (UserError, exit 1).
  const types = await typesToCheck(args);
  const later = ['credentials', 'stack', 'template version', 'network', 'instance types', 'AMI', 'offerings', 'vCPU quota'];

  const found = args.region ? { region: args.region, source: 'setting' } : await findRegion(ctx.config);
  if (!found) {
    const e = noRegionError(profileName(ctx.config), awsConfigFile());
    report({ name: 'region', status: 'FAIL', detail: `no AWS region is set (${e.details.join(' ')})`, fix: e.hint });
    for (const name of later) report({ name, status: 'skip', detail: 'needs a region' });
    return 1;
  }
  const region = found.region;
  report({ name: 'region', status: 'ok', detail: `${region}${found.source === 'setting' ? '' : ` (from ${found.source})`}` });

  const clients = makeSetupClients(region, { profile: ctx.config.profile });
  const ssm = new SSMClient({ region, ...(ctx.config.profile ? { profile: ctx.config.profile } : {}) });
  installCallLog(ssm, 'SSM');
  try {
    // Credentials -----------------------------------------------------------------------------
    let credsOk = false;
    try {
      const id = await clients.sts.send(new GetCallerIdentityCommand({}));
      credsOk = true;
      report({ name: 'credentials', status: 'ok', detail: `account ${id.Account} as ${id.Arn}` });
    } catch (err) {
      const problem = credentialProblem(err);
      report({
        name: 'credentials',
        status: 'FAIL',
        // Only the first sentence: the fix line below says what to do.
        detail: problem ? problem.split(/(?<=\.) /)[0]! : `could not check who you are (${errName(err)})`,
        fix: 'run `aws configure` (access keys) or `aws sso login` (SSO), or set AWS_PROFILE',
      });
    }
    if (!credsOk) {
      for (const name of later.slice(1)) report({ name, status: 'skip', detail: 'needs working credentials' });
      return 1;
    }

    // Stack and its version -------------------------------------------------------------------
    let outputs: StackOutputs | undefined;
    try {
      outputs = await readStackOutputs({ cfn: clients.cfn, stackName: args.stack });
      report({
        name: 'stack',
        status: 'ok',
        detail: `${args.stack}: bucket ${outputs.bucket}, table ${outputs.table}, security group ${outputs.securityGroupId}`,
      });
    } catch (err) {
      report({
        name: 'stack',
        status: 'FAIL',
        detail: errMessage(err),
        fix: `run \`gq setup --region ${region}${args.stack === 'gq' ? '' : ` --stack ${args.stack}`}\``,
      });
    }
    if (outputs) {
      const shipped = templateVersion();
      if (outputs.templateVersion === shipped) {
        report({ name: 'template version', status: 'ok', detail: `${shipped} (same as this gq)` });
      } else {
        report({
          name: 'template version',
          status: 'FAIL',
          detail: `stack has ${outputs.templateVersion ?? 'none'}, this gq ships ${shipped}`,
          fix: 'run `gq setup` to update the stack',
        });
      }
    } else {
      report({ name: 'template version', status: 'skip', detail: 'needs the stack' });
    }

    // Network: each subnet's way to S3, DynamoDB, SQS, Auto Scaling, EC2, STS ------------------
    let zones: string[] | undefined;
    if (outputs) {
      try {
        const { vpcId, subnets } = await stackSubnets(clients.ec2, outputs.securityGroupId, outputs.subnetIds);
        zones = [...new Set(subnets.map((s) => s.AvailabilityZone ?? '').filter(Boolean))].sort();
        const infos = await describeSubnetRoutes(clients.ec2, vpcId!, subnets);
        const endpoints = await describeEndpoints(clients.ec2, vpcId!);
        for (const info of infos) report({ name: 'network', ...subnetReach(info, endpoints) });
      } catch (err) {
        report({
          name: 'network',
          status: errIsUser(err) ? 'FAIL' : 'warn',
          detail: errIsUser(err) ? errMessage(err, false) : `could not read the subnets and routes (${errName(err)})`,
          fix: hintOf(err) ?? 'allow ec2:DescribeSubnets, ec2:DescribeRouteTables and ec2:DescribeVpcEndpoints',
        });
      }
    } else {
      report({ name: 'network', status: 'skip', detail: 'needs the stack' });
    }

    // Instance types, their AMIs (the same resolution as `gq submit`) and offerings -------------
    let known: TypeInfo[] = [];
    const ec2Types = types.filter((t) => t !== LOCAL_INSTANCE_TYPE);
    if (ec2Types.length < types.length) {
      report({
        name: 'instance types',
        status: 'FAIL',
        detail: `"${LOCAL_INSTANCE_TYPE}" only exists on the local backend`,
        fix: 'use EC2 instance types (for example t3.small) in the job file',
      });
    }
    try {
      const d = await describeTypes(clients.ec2, ec2Types);
      known = d.known.sort((a, b) => a.instanceType.localeCompare(b.instanceType));
      for (const t of d.unknown) {
        report({
          name: 'instance types',
          status: 'FAIL',
          detail: `EC2 does not offer ${t} in ${region}`,
          fix: 'check the spelling, or pick a type that `aws ec2 describe-instance-types` lists for this region',
        });
      }
      if (known.length) {
        report({
          name: 'instance types',
          status: 'ok',
          detail: known.map((t) => `${t.instanceType} (${t.architectures.join('/')}, ${t.vcpus} vCPUs)`).join(', '),
        });
      }
    } catch (err) {
      report({
        name: 'instance types',
        status: 'FAIL',
        detail: `could not look up ${ec2Types.join(', ')} (${errName(err)})`,
        fix: 'check that you may call ec2:DescribeInstanceTypes',
      });
    }
    for (const t of known) {
      const setting = amiSettingFor(ctx.config.ami ?? {}, t.instanceType);
      try {
        const ami = await resolveAmi({ ec2: clients.ec2, ssm }, setting, t, { gurobiProductCode: ctx.config.gurobiProductCode });
        report({
          name: 'AMI',
          status: 'ok',
          detail: `${t.instanceType} → ${ami.imageId}${ami.name ? ` ${ami.name}` : ''} (${ami.architecture ?? '?'}; ${ami.via})`,
        });
      } catch (err) {
        report({
          name: 'AMI',
          status: 'FAIL',
          detail: `${t.instanceType}, setting "${setting}": ${errIsUser(err) ? errMessage(err, false) : `could not look it up (${errName(err)})`}`,
          fix: hintOf(err) ?? 'check that you may call ec2:DescribeImages and ssm:GetParameter',
        });
      }
    }
    if (!known.length) report({ name: 'AMI', status: 'skip', detail: 'needs an instance type EC2 knows' });

    if (zones && known.length) {
      try {
        const offered = await offeredZones(clients.ec2, known.map((t) => t.instanceType), zones);
        for (const t of known) report({ name: 'offerings', ...offeringVerdict(t.instanceType, zones, offered.get(t.instanceType) ?? []) });
      } catch (err) {
        report({
          name: 'offerings',
          status: 'warn',
          detail: `could not check where the types are offered (${errName(err)})`,
          fix: 'allow ec2:DescribeInstanceTypeOfferings',
        });
      }
    } else {
      report({ name: 'offerings', status: 'skip', detail: zones ? 'needs an instance type EC2 knows' : 'needs the stack' });
    }

    // Quota -------------------------------------------------------------------------------------
    for (const t of known.length ? known : [{ instanceType: types[0] ?? DEFAULT_DOCTOR_INSTANCE_TYPE, vcpus: undefined }]) {
      report(await quotaCheck(clients.quotas, t.instanceType, t.vcpus, ctx.config.maxInstances, ctx.config.spot));
    }

    return results.some((r) => r.status === 'FAIL') ? 1 : 0;
  } finally {
    ssm.destroy();
    destroySetupClients(clients);
  }
}

// ---------------------------------------------------------------------------------------------
// Quota

const STANDARD_FAMILIES = /^[acdhimrtz]/;

async function quotaCheck(
  quotas: ServiceQuotasClient,
  instanceType: string,
  vcpus: number | undefined,
  maxInstances: number,
  spot: boolean,
): Promise<CheckResult> {
  const name = 'vCPU quota';
  if (!STANDARD_FAMILIES.test(instanceType)) {
    return {
      name,
      status: 'warn',
      detail: `could not check: ${ON_DEMAND_STANDARD_VCPU_QUOTA} covers standard families only, not ${instanceType}`,
      fix: 'see the EC2 quotas for this family in the Service Quotas console',
    };
  }
  let value: number | undefined;
  let why = '';
  try {
    const q = await quotas.send(new GetServiceQuotaCommand({ ServiceCode: 'ec2', QuotaCode: ON_DEMAND_STANDARD_VCPU_QUOTA }));
    value = q.Quota?.Value;
  } catch (err) {
    why = errName(err);
    try {
      const q = await quotas.send(
        new GetAWSDefaultServiceQuotaCommand({ ServiceCode: 'ec2', QuotaCode: ON_DEMAND_STANDARD_VCPU_QUOTA }),
      );
      value = q.Quota?.Value;
    } catch (err2) {
      why = errName(err2) || why;
    }
  }
  if (value === undefined) {
    return {
      name,
      status: 'warn',
      detail: `could not check the On-Demand vCPU quota (${why || 'no value'})`,
      fix: 'allow servicequotas:GetServiceQuota, or look up L-1216C47A in the Service Quotas console',
    };
  }
  const spotNote = spot ? ' (Spot has its own quota, L-34B43A08, not checked)' : '';
  if (vcpus === undefined) {
    return { name, status: 'ok', detail: `On-Demand standard vCPU quota is ${value}${spotNote}` };
  }
  if (value < vcpus) {
    return {
      name,
      status: 'FAIL',
      detail: `On-Demand standard vCPU quota is ${value}, below one ${instanceType} (${vcpus} vCPUs)`,
      fix: `request an increase of ${ON_DEMAND_STANDARD_VCPU_QUOTA} in the Service Quotas console`,
    };
  }
  const fits = Math.floor(value / vcpus);
  if (fits < maxInstances) {
    return {
      name,
      status: 'ok',
      detail: `quota ${value} vCPUs: at most ${fits} ${instanceType} at once (maxInstances is ${maxInstances})${spotNote}`,
    };
  }
  return { name, status: 'ok', detail: `quota ${value} vCPUs: room for ${fits} ${instanceType}${spotNote}` };
}

function errName(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown };
  return String(e?.name ?? e?.Code ?? 'error');
}

function errIsUser(err: unknown): boolean {
  return err instanceof UserError;
}

function hintOf(err: unknown): string | undefined {
  const h = (err as { hint?: unknown })?.hint;
  return typeof h === 'string' ? h : undefined;
}

function errMessage(err: unknown, withHint = true): string {
  const hint = withHint && hintOf(err) ? ` ${hintOf(err)}` : '';
  return `${String((err as { message?: unknown })?.message ?? err)}${hint}`;
}
