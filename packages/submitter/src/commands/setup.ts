/**
 * `gq setup`: create or update the once-per-account stack (infra/gq.yaml) in a region and show
 * what it made. Safe to run again: an up-to-date stack is left alone.
 */
import { UserError } from '@gq/common';
import type { CommandContext } from '../context.js';
import { deployStack, destroySetupClients, makeSetupClients } from '../aws/stack.js';

export interface SetupArgs {
  stack: string;
  region: string;
  /** VPC for the agents' security group; default: the stack's current one, else the default VPC. */
  vpcId?: string;
  /** Also allow outbound plain HTTP from the agents (template parameter AllowHttpEgress). */
  allowHttpEgress?: boolean;
}

const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;

export async function runSetup(ctx: CommandContext, args: SetupArgs): Promise<number> {
  if (!args.region) {
    throw new UserError('No AWS region given.', { hint: 'Pass --region, or set AWS_REGION.' });
  }
  if (args.vpcId !== undefined && !VPC_ID.test(args.vpcId)) {
    throw new UserError(`"${args.vpcId}" is not a VPC id.`, { hint: 'VPC ids look like vpc-0123456789abcdef0.' });
  }
  const params: Record<string, string> = {};
  if (args.vpcId) params.VpcId = args.vpcId;
  if (args.allowHttpEgress !== undefined) params.AllowHttpEgress = String(args.allowHttpEgress);

  const clients = makeSetupClients(args.region, { profile: ctx.config.profile });
  try {
    const { action, outputs } = await deployStack({
      cfn: clients.cfn,
      ec2: clients.ec2,
      stackName: args.stack,
      params,
      onProgress: (line) => ctx.io.out(line),
    });
    ctx.log.debug({ stack: args.stack, region: args.region, action }, 'setup done');
    const verb = action === 'unchanged' ? 'is up to date' : action;
    ctx.io.out(`Stack ${args.stack} in ${args.region} ${verb}.`);
    ctx.io.out(`  bucket           ${outputs.bucket}`);
    ctx.io.out(`  table            ${outputs.table}`);
    ctx.io.out(`  instance profile ${outputs.instanceProfileArn}`);
    ctx.io.out(`  security group   ${outputs.securityGroupId} (no inbound rules)`);
    if (outputs.kmsKeyArn) ctx.io.out(`  KMS key          ${outputs.kmsKeyArn}`);
    return 0;
  } finally {
    destroySetupClients(clients);
  }
}
