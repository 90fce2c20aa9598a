/**
 * `gq doctor`: check, one line each, that this machine can run jobs on AWS: region, credentials,
 * the gq stack and its version, the AMI for an instance type, and the On-Demand vCPU quota.
 * Each failed check says how to fix it. Exit code 0 when nothing failed, 1 otherwise; a check
 * that could not be made (e.g. no permission to read quotas) is a warning, not a failure.
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
import { redactText, registerSecret } from '@gq/common';
import type { CommandContext } from '../context.js';
import {
  credentialProblem,
  destroySetupClients,
  makeSetupClients,
  readStackOutputs,
  templateVersion,
  type StackOutputs,
} from '../aws/stack.js';
import { amiSettingFor, architectureFor, resolveAmi } from '../aws/ami.js';
import { describeTypes } from '../aws/instance-types.js';

export interface DoctorArgs {
  stack: string;
  /** Default: the configured region (config file, GQ_REGION, AWS_REGION). */
  region?: string;
  /** Instance type whose AMI and quota are checked (default DEFAULT_DOCTOR_INSTANCE_TYPE). */
  instanceType?: string;
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

export async function runDoctor(ctx: CommandContext, args: DoctorArgs): Promise<number> {
  registerSecret(process.env.AWS_SECRET_ACCESS_KEY);
  registerSecret(process.env.AWS_SESSION_TOKEN);
  const results: CheckResult[] = [];
  const report = (r: CheckResult): CheckResult => {
    results.push(r);
    ctx.io.out(redactText(formatCheck(r)));
    return r;
  };
  const instanceType = args.instanceType ?? DEFAULT_DOCTOR_INSTANCE_TYPE;

  const region = args.region ?? ctx.config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) {
    report({
      name: 'region',
      status: 'FAIL',
      detail: 'no AWS region is set',
      fix: 'pass --region us-east-1, set AWS_REGION, or add "region" to the gq config file',
    });
    for (const name of ['credentials', 'stack', 'template version', 'AMI', 'vCPU quota']) {
      report({ name, status: 'skip', detail: 'needs a region' });
    }
    return 1;
  }
  report({ name: 'region', status: 'ok', detail: region });

  const clients = makeSetupClients(region, { profile: ctx.config.profile });
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
      for (const name of ['stack', 'template version', 'AMI', 'vCPU quota']) {
        report({ name, status: 'skip', detail: 'needs working credentials' });
      }
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

    // AMI (the same resolution as `gq submit`: aws/ami.ts) ------------------------------------
    let vcpus: number | undefined;
    try {
      const { known } = await describeTypes(clients.ec2, [instanceType]);
      const info = known[0];
      if (!info) {
        report({
          name: 'AMI',
          status: 'FAIL',
          detail: `EC2 does not offer ${instanceType} in ${region}`,
          fix: 'check the instance type (`gq doctor --instance-type TYPE`)',
        });
      } else {
        vcpus = info.vcpus;
        const arch = architectureFor(info.architectures);
        const setting = amiSettingFor(ctx.config.ami ?? {}, instanceType);
        const ssm = new SSMClient({ region, ...(ctx.config.profile ? { profile: ctx.config.profile } : {}) });
        try {
          const ami = await resolveAmi({ ec2: clients.ec2, ssm }, setting, info, { gurobiProductCode: ctx.config.gurobiProductCode }).finally(() => ssm.destroy());
          report({ name: 'AMI', status: 'ok', detail: `${instanceType} (${arch}) → ${ami.imageId}${ami.name ? ` ${ami.name}` : ''}` });
        } catch (err) {
          report({
            name: 'AMI',
            status: 'FAIL',
            detail: `${instanceType} (${arch}), setting "${setting}": ${errMessage(err, false)}`,
            fix: hintOf(err) ?? 'set "ami" in the gq config to an AMI id or name pattern that exists in this region',
          });
        }
      }
    } catch (err) {
      report({
        name: 'AMI',
        status: 'FAIL',
        detail: `could not look up ${instanceType} (${errName(err)})`,
        fix: 'check that you may call ec2:DescribeInstanceTypes and ec2:DescribeImages',
      });
    }

    // Quota -------------------------------------------------------------------------------------
    report(await quotaCheck(clients.quotas, instanceType, vcpus, ctx.config.maxInstances, ctx.config.spot));

    return results.some((r) => r.status === 'FAIL') ? 1 : 0;
  } finally {
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

function hintOf(err: unknown): string | undefined {
  const h = (err as { hint?: unknown })?.hint;
  return typeof h === 'string' ? h : undefined;
}

function errMessage(err: unknown, withHint = true): string {
  const hint = withHint && hintOf(err) ? ` ${hintOf(err)}` : '';
  return `${String((err as { message?: unknown })?.message ?? err)}${hint}`;
}
