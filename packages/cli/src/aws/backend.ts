/**
 * Folder cli/src/aws: what only the CLI does on AWS (stack, AMI, network, IAM role per job, UserData inputs, credentials).
 *
 * The AWS backend as the CLI opens it: clients from the standard credential chain, the shared
 * resources from the gq stack's outputs, and a launch spec (AMI, UserData, the job's own IAM
 * role, security group, subnets) for the groups that submit creates. Removing a job's fleet also
 * deletes its IAM role and instance profile (job-role.ts).
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { IAMClient } from '@aws-sdk/client-iam';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Backend, Config, JobRecord, Pool } from '@gq/common';
import { installCallLog, makeAwsClients, openAwsBackend, type LaunchSpec } from '@gq/common/aws/index';
import { readStackOutputs } from './stack.js';
import { PINNED_NODE_VERSION, renderUserData } from '../userdata.js';
import { nodeBuildFor } from './node-dist.js';
import { amiSettingFor, architectureFor, resolveAmi } from './ami.js';
import { describeTypes } from './instance-types.js';
import { ensureAgentUploaded, type AgentBundle } from './agent-bundle.js';
import { resolveRegion } from './region.js';
import { stackSubnets } from './network.js';
import { ensureJobRole, removeJobRole, type JobRole, type JobRoleSettings } from './job-role.js';

export async function openAwsCliBackend(config: Config): Promise<Backend> {
  const region = await resolveRegion(config);
  const clients = makeAwsClients({ region, profile: config.profile });
  const cfn = new CloudFormationClient({ region, ...(config.profile ? { profile: config.profile } : {}) });
  installCallLog(cfn, 'CloudFormation');
  const outputs = await readStackOutputs({ cfn, stackName: config.stack }).finally(() => cfn.destroy());
  let agent: AgentBundle | undefined;
  let subnets: string[] | undefined;
  // IAM is global: one client, made when a job role is first needed.
  let iam: IAMClient | undefined;
  const iamClient = (): IAMClient => {
    if (!iam) {
      iam = new IAMClient({ region, ...(config.profile ? { profile: config.profile } : {}), maxAttempts: 8, retryMode: 'adaptive' });
      installCallLog(iam, 'IAM');
    }
    return iam;
  };
  const roleSettings: JobRoleSettings = {
    path: outputs.jobRolePath,
    policyArn: outputs.jobAgentPolicyArn,
    boundaryArn: outputs.jobRoleBoundaryArn,
    stack: config.stack,
    region,
  };
  const roles = new Map<string, Promise<JobRole>>();
  const jobRole = (job: string): Promise<JobRole> => {
    let r = roles.get(job);
    if (!r) {
      r = ensureJobRole(iamClient(), roleSettings, job);
      roles.set(job, r);
    }
    return r;
  };
  const spot = (job: JobRecord) => (job.market ? job.market === 'spot' : config.spot);
  const backend = openAwsBackend({
    region,
    bucket: outputs.bucket,
    table: outputs.table,
    clients,
    ownsClients: true,
    launchSpec: async (job: JobRecord, instanceType: string, pool: Pool): Promise<LaunchSpec> => {
      agent ??= await ensureAgentUploaded(backend.artifacts);
      subnets ??= (await stackSubnets(clients.ec2, outputs.securityGroupId, outputs.subnetIds)).subnets.map((s) => s.SubnetId!);
      const role = await jobRole(job.name);
      const { known } = await describeTypes(clients.ec2, [instanceType]);
      const type = { instanceType, architectures: known[0]?.architectures ?? [] };
      const ssm = new SSMClient({ region, ...(config.profile ? { profile: config.profile } : {}) });
      installCallLog(ssm, 'SSM');
      const ami = await resolveAmi({ ec2: clients.ec2, ssm }, amiSettingFor(config.ami, instanceType), type, {
        gurobiProductCode: config.gurobiProductCode,
      }).finally(() => ssm.destroy());
      // The Node.js build for the image's architecture (the one the AMI was checked against).
      const node = await nodeBuildFor(backend.artifacts, PINNED_NODE_VERSION, architectureFor(type.architectures) === 'arm64' ? 'arm64' : 'x86_64');
      return {
        imageId: ami.imageId,
        rootDeviceName: ami.rootDeviceName,
        instanceProfileArn: role.profileArn,
        instanceProfileFresh: role.fresh,
        ...(outputs.publicIpv4 === 'none' ? { associatePublicIp: false } : {}),
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
          onDemand: pool === 'on-demand',
          rootVolumeGb: ami.rootVolumeGb,
        }),
        subnetIds: subnets,
        maxInstances: config.maxInstances,
        // The market the job was submitted with (a later gq status or retry needs no --spot); a
        // Spot job's on-demand group (job/on-demand.ts) is on-demand only.
        spot: spot(job) && pool === 'main',
        ...(spot(job) && pool === 'main' && config.spotAlternatives[instanceType]?.length ? { spotAlternatives: config.spotAlternatives[instanceType] } : {}),
        tags: { 'gq:job': job.name },
      };
    },
  });
  // The job's role goes with its fleet (gq clean), after the groups that use it.
  const removeFleet = backend.fleet.remove.bind(backend.fleet);
  backend.fleet.remove = async (job: string): Promise<void> => {
    await removeFleet(job);
    roles.delete(job);
    await removeJobRole(iamClient(), roleSettings, job);
  };
  const close = backend.close.bind(backend);
  return {
    ...backend,
    async close() {
      iam?.destroy();
      await close();
    },
  };
}
