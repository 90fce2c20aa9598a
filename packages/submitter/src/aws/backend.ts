/**
 * The AWS backend as the CLI opens it: clients from the standard credential chain, the shared
 * resources from the gq stack's outputs, and a launch spec (AMI, UserData, role, security group)
 * for the groups that submit creates.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DescribeSecurityGroupsCommand, DescribeSubnetsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { UserError, type Backend, type Config, type JobRecord } from '@gq/common';
import { makeAwsClients, openAwsBackend, type LaunchSpec } from '@gq/common/aws/index';
import { readStackOutputs } from './stack.js';
import { PINNED_NODE_VERSION, renderUserData } from '../userdata.js';
import { nodeBuildFor } from './node-dist.js';
import { amiSettingFor, resolveAmi } from './ami.js';
import { describeTypes } from './instance-types.js';
import { ensureAgentUploaded, type AgentBundle } from './agent-bundle.js';

export async function openAwsCliBackend(config: Config): Promise<Backend> {
  const region = config.region;
  if (!region) throw new UserError('No AWS region set.', { hint: 'Pass --region, set AWS_REGION, or put "region" in the config file.' });
  const clients = makeAwsClients({ region, profile: config.profile });
  const cfn = new CloudFormationClient({ region, ...(config.profile ? { profile: config.profile } : {}) });
  const outputs = await readStackOutputs({ cfn, stackName: config.stack }).finally(() => cfn.destroy());
  let agent: AgentBundle | undefined;
  let subnets: string[] | undefined;
  const backend = openAwsBackend({
    region,
    bucket: outputs.bucket,
    table: outputs.table,
    clients,
    ownsClients: true,
    launchSpec: async (job: JobRecord, instanceType: string): Promise<LaunchSpec> => {
      agent ??= await ensureAgentUploaded(backend.artifacts);
      subnets ??= await subnetsOf(clients.ec2, outputs.securityGroupId);
      const { known } = await describeTypes(clients.ec2, [instanceType]);
      const arch = known[0]?.architectures.includes('arm64') && !known[0]?.architectures.includes('x86_64') ? 'arm64' : 'x86_64';
      const ami = await resolveAmi(clients.ec2, amiSettingFor(config.ami, instanceType), arch);
      const node = await nodeBuildFor(backend.artifacts, PINNED_NODE_VERSION, arch);
      return {
        imageId: ami.imageId,
        rootDeviceName: ami.rootDeviceName,
        instanceProfileArn: outputs.instanceProfileArn,
        securityGroupIds: outputs.securityGroupId ? [outputs.securityGroupId] : undefined,
        userData: renderUserData({
          region,
          bucket: outputs.bucket,
          table: outputs.table,
          job: job.name,
          instanceType,
          agentKey: agent.key,
          agentSha256: agent.sha256,
          nodeVersion: PINNED_NODE_VERSION,
          nodeKey: node.key,
          nodeSha256: node.sha256,
          taskAwsAccess: config.taskAwsAccess,
        }),
        subnetIds: subnets,
        maxInstances: config.maxInstances,
        spot: config.spot,
        tags: { 'gq:job': job.name },
      };
    },
  });
  return backend;
}

/** The subnets of the security group's VPC (one group spans them all, across zones). */
async function subnetsOf(ec2: EC2Client, securityGroupId: string | undefined): Promise<string[]> {
  let vpc: string | undefined;
  if (securityGroupId) {
    const sg = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [securityGroupId] }));
    vpc = sg.SecurityGroups?.[0]?.VpcId;
  }
  const r = await ec2.send(
    new DescribeSubnetsCommand({ Filters: vpc ? [{ Name: 'vpc-id', Values: [vpc] }] : [{ Name: 'default-for-az', Values: ['true'] }] }),
  );
  const ids = (r.Subnets ?? []).map((s) => s.SubnetId!).filter(Boolean).sort();
  if (!ids.length) {
    throw new UserError(`No subnets found in ${vpc ?? 'the default VPC'}.`, { hint: 'Run `gq setup --vpc-id VPC` with a VPC that has subnets.' });
  }
  return ids;
}
