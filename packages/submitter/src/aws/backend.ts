/**
 * The AWS backend as the CLI opens it: clients from the standard credential chain, the shared
 * resources from the gq stack's outputs, and a launch spec (AMI, UserData, role, security group)
 * for the groups that submit creates.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Backend, Config, JobRecord } from '@gq/common';
import { makeAwsClients, openAwsBackend, type LaunchSpec } from '@gq/common/aws/index';
import { readStackOutputs } from './stack.js';
import { renderUserData } from '../userdata.js';
import { amiSettingFor, resolveAmi } from './ami.js';
import { describeTypes } from './instance-types.js';
import { ensureAgentUploaded, type AgentBundle } from './agent-bundle.js';
import { resolveRegion } from './region.js';
import { stackSubnets } from './network.js';

export async function openAwsCliBackend(config: Config): Promise<Backend> {
  const region = await resolveRegion(config);
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
      subnets ??= (await stackSubnets(clients.ec2, outputs.securityGroupId)).subnets.map((s) => s.SubnetId!);
      const { known } = await describeTypes(clients.ec2, [instanceType]);
      const type = { instanceType, architectures: known[0]?.architectures ?? [] };
      const ssm = new SSMClient({ region, ...(config.profile ? { profile: config.profile } : {}) });
      const ami = await resolveAmi({ ec2: clients.ec2, ssm }, amiSettingFor(config.ami, instanceType), type, {
        gurobiProductCode: config.gurobiProductCode,
      }).finally(() => ssm.destroy());
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
          nodeVersion: process.versions.node,
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
