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
  /** Outbound traffic of the agents (template parameter AgentEgress). */
  egress?: string;
  /** Subnets for the agents (SubnetIds); default: every subnet of the VPC. */
  subnetIds?: string[];
  /** 'none': no public IPv4 addresses (PublicIpv4). */
  publicIpv4?: string;
  /** Route tables that get S3 and DynamoDB gateway endpoints (GatewayEndpointRouteTableIds). */
  gatewayEndpointRouteTables?: string[];
  /** Where to download the instances' Node.js build (nodejs.org's layout). */
  nodeMirror?: string;
}

export const EGRESS_CHOICES = ['https-only', 'http-and-https', 'all'] as const;
export const PUBLIC_IPV4_CHOICES = ['subnet-default', 'none'] as const;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const ROUTE_TABLE_ID = /^rtb-[0-9a-f]{8,17}$/;

/** The stack parameters of a setup, every value checked (pure). */
export function setupParameters(args: SetupArgs): Record<string, string> {
  const params: Record<string, string> = {};
  if (args.vpcId !== undefined && !VPC_ID.test(args.vpcId)) {
    throw new UserError(`"${args.vpcId}" is not a VPC id.`, { hint: 'VPC ids look like vpc-0123456789abcdef0.' });
  }
  if (args.vpcId) params.VpcId = args.vpcId;
  if (args.egress !== undefined) {
    if (!(EGRESS_CHOICES as readonly string[]).includes(args.egress)) {
      throw new UserError(`--egress ${args.egress} is not one of ${EGRESS_CHOICES.join(', ')}.`, { hint: 'README "Network" says what each allows.' });
    }
    params.AgentEgress = args.egress;
  }
  if (args.publicIpv4 !== undefined) {
    if (!(PUBLIC_IPV4_CHOICES as readonly string[]).includes(args.publicIpv4)) {
      throw new UserError(`--public-ipv4 ${args.publicIpv4} is not one of ${PUBLIC_IPV4_CHOICES.join(', ')}.`, { hint: 'none: private subnets (README "Network").' });
    }
    params.PublicIpv4 = args.publicIpv4;
  }
  const list = (name: string, ids: string[] | undefined, re: RegExp, example: string): string | undefined => {
    if (ids === undefined) return undefined;
    const bad = ids.filter((i) => !re.test(i));
    if (bad.length) throw new UserError(`${name}: "${bad[0]}" is not an id like ${example}.`, { hint: `Give ${name} as a comma-separated list of ids.` });
    return ids.join(',');
  };
  const subnets = list('--subnets', args.subnetIds, SUBNET_ID, 'subnet-0123456789abcdef0');
  if (subnets !== undefined) params.SubnetIds = subnets;
  const rtbs = list('--gateway-endpoints', args.gatewayEndpointRouteTables, ROUTE_TABLE_ID, 'rtb-0123456789abcdef0');
  if (rtbs !== undefined) params.GatewayEndpointRouteTableIds = rtbs;
  return params;
}

const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;

export async function runSetup(ctx: CommandContext, args: SetupArgs): Promise<number> {
  if (!args.region) {
    throw new UserError('No AWS region given.', { hint: 'Pass --region, or set AWS_REGION.' });
  }
  const params = setupParameters(args);

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
    ctx.io.out(`  security group   ${outputs.securityGroupId} (no inbound rules)`);
    ctx.io.out(`  job role policy  ${outputs.jobAgentPolicyArn} (one role per job, under ${outputs.jobRolePath})`);
    if (outputs.userPolicyArn) ctx.io.out(`  user policy      ${outputs.userPolicyArn} (attach it to the people who run gq)`);
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
