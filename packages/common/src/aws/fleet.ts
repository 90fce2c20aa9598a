/**
 * Fleet on EC2 Auto Scaling: one group and one launch template per (job, instance type), both
 * named gq-<job>-<type> and tagged gq:job / gq:instance-type.
 *
 * The launch template is created once and never given new versions (moto answers HTTP 500 for a
 * group on a template version ≥ 2; and a job's launch settings are fixed at submit anyway).
 * The desired capacity is clamped by gq itself to [busy workers, MaxSize] (see scaling.ts).
 */
import {
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
  SetInstanceProtectionCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
  type AutoScalingClient,
  type AutoScalingGroup,
  type Tag as AsgTag,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  DeleteLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplatesCommand,
  type EC2Client,
  type LaunchTemplate,
  type _InstanceType,
  type Tag as Ec2Tag,
} from '@aws-sdk/client-ec2';
import { GqError, UserError } from '../errors.js';
import type { JobRecord } from '../job/model.js';
import type { Fleet, FleetGroup, LaunchedInstance } from '../ports.js';
import { retryWithBackoff } from '../backoff.js';
import { AZ_REBALANCE, busyCount, rebalanceSuspended, tagValue, toGroup } from './fleet-view.js';
import { consoleOutput, explainRefusedGroup, isNotYetVisible, jobInstances, recentActivities } from './fleet-health.js';
import { launchProblemOf } from './launch-failures.js';
import { groupName, JOB_TAG, launchTemplateName, POOL_TAG, TYPE_TAG } from './names.js';
import type { Pool } from '../job/on-demand.js';
import { clampDesired } from './scaling.js';
import { raiseGroup } from './fleet-raise.js';
import { MAX_GROUP_TYPES } from '../config/schema.js';

/** How workers of (job, instance type) are launched; fixed when the group is created. */
export interface LaunchSpec {
  imageId: string;
  /** Instance profile (role) of the workers. */
  instanceProfileArn?: string;
  /** The profile was created just now: EC2 may not know it yet (group creation is retried). */
  instanceProfileFresh?: boolean;
  /** false: ask for no public IPv4 address (private subnets); absent: the subnet decides. */
  associatePublicIp?: false;
  securityGroupIds?: string[];
  /** Subnets of the group (one per AZ); absent = the default VPC's subnets. */
  subnetIds?: string[];
  /** Plain text; base64-encoded here. */
  userData: string;
  /** The group's MaxSize. */
  maxInstances: number;
  /** Spot instances (mixed instances policy, 0 % on demand). */
  spot?: boolean;
  /**
   * With spot: stand-in types the group may launch too (checked at submit: same architecture, as
   * many vCPUs and as much memory or more). Workers of a stand-in serve the group's own type.
   */
  spotAlternatives?: string[];
  /** Extra tags for the template, the group and the instances. */
  tags: Record<string, string>;
  /** Root volume size in GiB (default and minimum: the AMI's). */
  rootVolumeGb?: number;
  /** Root device of the AMI; looked up with DescribeImages when absent. */
  rootDeviceName?: string;
}

export interface AsgFleetOptions {
  autoscaling: AutoScalingClient;
  ec2: EC2Client;
  /** Needed to create groups (the submitting side); agents only protect, terminate and raise (raiseCapacity). */
  launchSpec?: (job: JobRecord, instanceType: string, pool: Pool) => Promise<LaunchSpec>;
}

function hasName(err: unknown, ...names: string[]): boolean {
  const e = err as { name?: string; Code?: string };
  return typeof err === 'object' && err !== null && (names.includes(e.name ?? '') || names.includes(e.Code ?? ''));
}

/** Root volume size when neither the spec nor the AMI says (GiB). */
const DEFAULT_ROOT_GB = 8;

export { rebalanceSuspended };

/**
 * What CreateAutoScalingGroup retries: the "not yet visible" answers (fleet-health.ts), and, for
 * an instance profile created just now, any ValidationError. IAM is eventually consistent
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency)
 * and a new profile shows up under more than one message ("Invalid IamInstanceProfile", "...not
 * found"); the retries are bounded (backoff.ts), after which the error is passed on as it is.
 */
export function notYetVisibleFor(spec: Pick<LaunchSpec, 'instanceProfileFresh'>): (err: unknown) => boolean {
  return (err) => isNotYetVisible(err) || (spec.instanceProfileFresh === true && hasName(err, 'ValidationError'));
}

/**
 * The mixed instances policy's overrides for stand-in types: the group's own type first, then
 * each stand-in once (at most 40 types a group:
 * https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateOverrides.html).
 * None without stand-ins: the template's type is the only one.
 */
export function overridesFor(instanceType: string, alternatives: readonly string[] = []): { Overrides?: { InstanceType: string }[] } {
  const types = [...new Set([instanceType, ...alternatives])];
  if (types.length === 1) return {};
  if (types.length > MAX_GROUP_TYPES) throw new UserError(`${instanceType} has ${types.length - 1} stand-in types; a group takes at most ${MAX_GROUP_TYPES} in all.`);
  return { Overrides: types.map((InstanceType) => ({ InstanceType })) };
}

/** The tags every resource of (job, type, pool) carries: gq:job, gq:instance-type, and gq:pool for the on-demand pool. */
function poolTags(job: string, instanceType: string, pool: Pool): Record<string, string> {
  return { [JOB_TAG]: job, [TYPE_TAG]: instanceType, ...(pool === 'main' ? {} : { [POOL_TAG]: pool }) };
}

export class AsgFleet implements Fleet {
  private readonly autoscaling: AutoScalingClient;
  private readonly ec2: EC2Client;
  private readonly launchSpec: AsgFleetOptions['launchSpec'];

  constructor(opts: AsgFleetOptions) {
    this.autoscaling = opts.autoscaling;
    this.ec2 = opts.ec2;
    this.launchSpec = opts.launchSpec;
  }

  private async group(name: string): Promise<AutoScalingGroup | undefined> {
    const out = await this.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
    return out.AutoScalingGroups?.find((g) => g.AutoScalingGroupName === name);
  }

  /** The job's groups (by tag), whatever their instance types. */
  private async groups(job: string): Promise<AutoScalingGroup[]> {
    const found: AutoScalingGroup[] = [];
    let token: string | undefined;
    do {
      const out = await this.autoscaling.send(
        new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${JOB_TAG}`, Values: [job] }], NextToken: token }),
      );
      for (const g of out.AutoScalingGroups ?? []) if (tagValue(g.Tags, JOB_TAG) === job) found.push(g);
      token = out.NextToken;
    } while (token);
    return found.sort((a, b) => (a.AutoScalingGroupName ?? '').localeCompare(b.AutoScalingGroupName ?? ''));
  }

  private async templates(job: string): Promise<LaunchTemplate[]> {
    const found: LaunchTemplate[] = [];
    let token: string | undefined;
    do {
      const out = await this.ec2.send(
        new DescribeLaunchTemplatesCommand({ Filters: [{ Name: `tag:${JOB_TAG}`, Values: [job] }], NextToken: token }),
      );
      found.push(...(out.LaunchTemplates ?? []));
      token = out.NextToken;
    } while (token);
    return found;
  }

  private async templateExists(name: string): Promise<boolean> {
    try {
      const out = await this.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] }));
      return (out.LaunchTemplates ?? []).length > 0;
    } catch (err) {
      if (hasName(err, 'InvalidLaunchTemplateName.NotFoundException', 'InvalidLaunchTemplateId.NotFound')) return false;
      throw err;
    }
  }

  /**
   * The root device of the AMI and its size: an explicit size at least as large as the AMI's
   * snapshot (moto, unlike EC2, refuses a block device mapping without a size).
   */
  private async rootDisk(spec: LaunchSpec): Promise<{ device: string; sizeGb: number }> {
    if (spec.rootDeviceName && spec.rootVolumeGb) return { device: spec.rootDeviceName, sizeGb: spec.rootVolumeGb };
    const out = await this.ec2.send(new DescribeImagesCommand({ ImageIds: [spec.imageId] }));
    const image = out.Images?.[0];
    if (!image) throw new UserError(`AMI ${spec.imageId} was not found.`, { hint: 'Check the ami setting and the region.' });
    const device = spec.rootDeviceName ?? image.RootDeviceName ?? '/dev/xvda';
    const imageGb = image.BlockDeviceMappings?.find((m) => m.DeviceName === device)?.Ebs?.VolumeSize ?? DEFAULT_ROOT_GB;
    return { device, sizeGb: Math.max(imageGb, spec.rootVolumeGb ?? 0) };
  }

  /** Create the launch template if missing (an existing one is reused as it is, never versioned). */
  private async ensureTemplate(job: string, instanceType: string, spec: LaunchSpec, pool: Pool): Promise<string> {
    const name = launchTemplateName(job, instanceType, pool);
    if (await this.templateExists(name)) return name;
    const baseTags: Record<string, string> = { ...spec.tags, ...poolTags(job, instanceType, pool) };
    const ec2Tags = (extra: Record<string, string> = {}): Ec2Tag[] =>
      Object.entries({ ...baseTags, ...extra }).map(([Key, Value]) => ({ Key, Value }));
    const root = await this.rootDisk(spec);
    try {
      await this.ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: name,
          VersionDescription: `gq job ${job} (${instanceType})`,
          LaunchTemplateData: {
            ImageId: spec.imageId,
            InstanceType: instanceType as _InstanceType,
            UserData: Buffer.from(spec.userData, 'utf8').toString('base64'),
            ...(spec.instanceProfileArn ? { IamInstanceProfile: { Arn: spec.instanceProfileArn } } : {}),
            // No public IPv4 asked for: the groups go on the primary interface with the flag
            // (EC2 refuses SecurityGroupIds beside NetworkInterfaces).
            ...(spec.associatePublicIp === false
              ? { NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: false, ...(spec.securityGroupIds?.length ? { Groups: spec.securityGroupIds } : {}) }] }
              : spec.securityGroupIds?.length
                ? { SecurityGroupIds: spec.securityGroupIds }
                : {}),
            MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled', InstanceMetadataTags: 'disabled' },
            InstanceInitiatedShutdownBehavior: 'terminate',
            BlockDeviceMappings: [
              {
                DeviceName: root.device,
                Ebs: { Encrypted: true, DeleteOnTermination: true, VolumeType: 'gp3', VolumeSize: root.sizeGb },
              },
            ],
            TagSpecifications: [
              { ResourceType: 'instance', Tags: ec2Tags({ Name: name }) },
              { ResourceType: 'volume', Tags: ec2Tags() },
            ],
          },
          TagSpecifications: [{ ResourceType: 'launch-template', Tags: ec2Tags() }],
        }),
      );
    } catch (err) {
      // Created meanwhile by another submitter: use it.
      if (!hasName(err, 'InvalidLaunchTemplateName.AlreadyExistsException')) throw err;
    }
    return name;
  }

  private async createGroup(job: JobRecord, instanceType: string, desired: number, pool: Pool): Promise<void> {
    if (!this.launchSpec) {
      throw new GqError(`no launch settings to create the fleet of ${job.name} (${instanceType})`);
    }
    const spec = await this.launchSpec(job, instanceType, pool);
    const template = await this.ensureTemplate(job.name, instanceType, spec, pool);
    const max = Math.max(0, Math.floor(spec.maxInstances));
    const name = groupName(job.name, instanceType, pool);
    const tags: AsgTag[] = Object.entries({
      ...spec.tags,
      ...poolTags(job.name, instanceType, pool),
      Name: name,
    }).map(([Key, Value]) => ({ Key, Value, PropagateAtLaunch: true, ResourceId: name, ResourceType: 'auto-scaling-group' }));
    const templateSpec = { LaunchTemplateName: template, Version: '$Latest' };
    try {
      // Eventual consistency: the template just created, or the job's new instance profile, may
      // not be visible to Auto Scaling yet (fleet-health.ts); a few bounded retries.
      await retryWithBackoff(() => this.autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          MinSize: 0,
          MaxSize: max,
          DesiredCapacity: clampDesired(desired, max, 0),
          ...(spec.spot
            ? {
                MixedInstancesPolicy: {
                  LaunchTemplate: { LaunchTemplateSpecification: templateSpec, ...overridesFor(instanceType, spec.spotAlternatives) },
                  InstancesDistribution: {
                    OnDemandBaseCapacity: 0,
                    OnDemandPercentageAboveBaseCapacity: 0,
                    SpotAllocationStrategy: 'price-capacity-optimized',
                  },
                },
              }
            : { LaunchTemplate: templateSpec }),
          ...(spec.subnetIds?.length ? { VPCZoneIdentifier: spec.subnetIds.join(',') } : {}),
          NewInstancesProtectedFromScaleIn: false,
          // A worker that fails its health check is replaced, but gq workers leave on their own.
          HealthCheckType: 'EC2',
          HealthCheckGracePeriod: 300,
          Tags: tags,
        }),
      ), notYetVisibleFor(spec));
    } catch (err) {
      // Created meanwhile by another submitter: adjust it below like any existing group.
      if (!hasName(err, 'AlreadyExistsFault', 'AlreadyExists')) throw explainRefusedGroup(err, instanceType);
    }
    await this.suspendRebalance(name);
  }

  /**
   * AZRebalance would terminate running workers (and their tasks) to even out the zones; gq's
   * workers leave on their own. Suspending a suspended process is a no-op, so this is safe to
   * repeat (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SuspendProcesses.html,
   * https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html).
   */
  private async suspendRebalance(name: string): Promise<void> {
    await this.autoscaling.send(new SuspendProcessesCommand({ AutoScalingGroupName: name, ScalingProcesses: [AZ_REBALANCE] }));
  }

  async ensureCapacity(job: JobRecord, instanceType: string, desired: number, pool: Pool = 'main'): Promise<FleetGroup> {
    const name = groupName(job.name, instanceType, pool);
    let g = await this.group(name);
    if (!g) {
      await this.createGroup(job, instanceType, desired, pool);
      g = await this.group(name);
      if (!g) throw new GqError(`Auto Scaling group ${name} was created but cannot be described`);
    } else if (!rebalanceSuspended(g)) {
      // A group made by an older gq, or before a crash between create and suspend.
      await this.suspendRebalance(name);
    }
    const want = clampDesired(desired, g.MaxSize ?? 0, busyCount(g));
    if (want !== g.DesiredCapacity) {
      await this.autoscaling.send(
        new SetDesiredCapacityCommand({ AutoScalingGroupName: name, DesiredCapacity: want, HonorCooldown: false }),
      );
      g = (await this.group(name)) ?? { ...g, DesiredCapacity: want };
    }
    return toGroup(g);
  }

  async ensureGroup(job: JobRecord, instanceType: string, pool: Pool): Promise<void> {
    if (!(await this.group(groupName(job.name, instanceType, pool)))) await this.createGroup(job, instanceType, 0, pool);
  }

  async raiseCapacity(job: string, instanceType: string, pending: number, slotsPerInstance: number, pool: Pool, signal?: AbortSignal): Promise<number | undefined> {
    return raiseGroup(this.autoscaling, groupName(job, instanceType, pool), pending, slotsPerInstance, signal);
  }

  /** The job's groups, each with its launch problem when its last launches failed (scaling activities). */
  async describe(job: string): Promise<FleetGroup[]> {
    return Promise.all(
      (await this.groups(job)).map(async (g) => {
        const group = toGroup(g);
        const problem = launchProblemOf(await recentActivities(this.autoscaling, g.AutoScalingGroupName ?? ''), { instanceType: group.instanceType });
        return problem ? { ...group, launchProblem: problem } : group;
      }),
    );
  }

  async launched(job: string): Promise<LaunchedInstance[]> {
    return jobInstances(this.ec2, job);
  }

  async consoleOutput(instance: string): Promise<string | undefined> {
    return consoleOutput(this.ec2, instance);
  }

  async protect(job: string, instanceType: string, instance: string, on: boolean, pool: Pool = 'main'): Promise<void> {
    await this.autoscaling.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: groupName(job, instanceType, pool),
        InstanceIds: [instance],
        ProtectedFromScaleIn: on,
      }),
    );
  }

  /**
   * Leave the group and lower its desired capacity by one, so that no replacement is launched.
   * When the desired capacity is already at the group's minimum (after `stop`), EC2 Auto Scaling
   * refuses the decrement (ValidationError): the instance then leaves without it (nothing
   * replaces it at desired 0 anyway). One call normally, and no Describe: the agent's role may
   * scale only its job's on-demand groups (raiseCapacity), not this one.
   */
  async terminateSelf(_job: string, _instanceType: string, instance: string): Promise<void> {
    try {
      await this.autoscaling.send(
        new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instance, ShouldDecrementDesiredCapacity: true }),
      );
    } catch (err) {
      if (!hasName(err, 'ValidationError')) throw err;
      await this.autoscaling.send(
        new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instance, ShouldDecrementDesiredCapacity: false }),
      );
    }
  }

  async stop(job: string): Promise<void> {
    for (const g of await this.groups(job)) {
      await this.autoscaling.send(
        new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: g.AutoScalingGroupName, MinSize: 0, DesiredCapacity: 0 }),
      );
    }
  }

  async remove(job: string): Promise<void> {
    for (const g of await this.groups(job)) {
      try {
        await this.autoscaling.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: g.AutoScalingGroupName, ForceDelete: true }));
      } catch (err) {
        // Gone meanwhile is fine; anything else is not.
        if (await this.group(g.AutoScalingGroupName ?? '')) throw err;
      }
    }
    for (const t of await this.templates(job)) {
      try {
        await this.ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateId: t.LaunchTemplateId }));
      } catch (err) {
        if (!hasName(err, 'InvalidLaunchTemplateId.NotFound', 'InvalidLaunchTemplateName.NotFoundException')) throw err;
      }
    }
  }
}
