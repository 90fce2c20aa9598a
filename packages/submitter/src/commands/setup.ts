/**
 * `gq setup`: create or update the once-per-account stack (infra/gq.yaml) in a region and show
 * what it made. Safe to run again: an up-to-date stack is left alone.
 */
import { UserError } from '@gq/common';
import type { CommandContext } from '../context.js';
import { makeAwsClients, S3ArtifactStore } from '@gq/common/aws/index';
import { deployStack, destroySetupClients, makeSetupClients } from '../aws/stack.js';
import { ensureNodeUploaded } from '../aws/node-dist.js';
import { PINNED_NODE_VERSION } from '../userdata.js';

export interface SetupArgs {
  stack: string;
  region: string;
  /** VPC for the agents' security group; default: the stack's current one, else the default VPC. */
  vpcId?: string;
  /** Also allow outbound plain HTTP from the agents (template parameter AllowHttpEgress). */
  allowHttpEgress?: boolean;
  /** Where to download the instances' Node.js build (nodejs.org's layout). */
  nodeMirror?: string;
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
    // The instances' Node.js, once per account: they never download it from the internet.
    const aws = makeAwsClients({ region: args.region, profile: ctx.config.profile });
    try {
      const artifacts = new S3ArtifactStore(aws.s3, { bucket: outputs.bucket });
      const node = await ensureNodeUploaded({
        artifacts,
        version: PINNED_NODE_VERSION,
        mirror: args.nodeMirror ?? 'https://nodejs.org/dist',
        onProgress: (line) => ctx.io.out(line),
      });
      ctx.io.out(`  Node.js          ${PINNED_NODE_VERSION} ${node.uploaded ? `stored (from ${node.manifest.source})` : 'already stored'}`);
    } finally {
      aws.destroy();
    }
    return 0;
  } finally {
    destroySetupClients(clients);
  }
}
