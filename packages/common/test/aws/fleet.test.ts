/** AsgFleet on moto: launch template + group creation, clamping, protection, self-termination, clean-up. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSubnetsCommand,
} from '@aws-sdk/client-ec2';
import type { AwsClients } from '../../src/aws/clients.js';
import { AsgFleet, notYetVisibleFor, overridesFor, type LaunchSpec } from '../../src/aws/fleet.js';
import { UserError } from '../../src/errors.js';
import { retryWithBackoff } from '../../src/backoff.js';
import { groupName } from '../../src/aws/names.js';
import { groupOf } from '../../src/ports.js';
import type { Pool } from '../../src/job/on-demand.js';
import type { JobRecord } from '../../src/job/model.js';
import { emptyCounts } from '../../src/job/states.js';
import { makeSpec } from '../contract/status.contract.js';
import { uniqueJob } from '../contract/util.js';
import { describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';


const TYPE = 't3.micro';

function jobRecord(name: string): JobRecord {
  return { ...makeSpec(name, 10), backend: 'aws', counts: emptyCounts(), cancelRequested: false, updatedAt: new Date().toISOString() };
}

describeAws('AsgFleet (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let imageId: string;
  let subnetIds: string[];
  const specs: Array<{ job: string; type: string }> = [];

  beforeAll(async () => {
    moto = (await startMoto())!;
    clients = motoClients(moto.endpoint);
    imageId = (await clients.ec2.send(new DescribeImagesCommand({}))).Images![0]!.ImageId!;
    subnetIds = (await clients.ec2.send(new DescribeSubnetsCommand({}))).Subnets!.slice(0, 2).map((s) => s.SubnetId!);
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  function fleet(over: Partial<LaunchSpec> = {}): AsgFleet {
    return new AsgFleet({
      autoscaling: clients.autoscaling,
      ec2: clients.ec2,
      launchSpec: async (job, type) => {
        specs.push({ job: job.name, type });
        return {
          imageId,
          instanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/gq-worker',
          subnetIds,
          userData: '#!/bin/bash\necho "gq agent"\n',
          maxInstances: 3,
          tags: { project: 'gq-test' },
          ...over,
        };
      },
    });
  }

  const group = async (name: string) =>
    (await clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups?.[0];

  it('ensureCapacity creates the launch template and the group, clamped to MaxSize', async () => {
    const job = uniqueJob('create');
    const f = fleet();
    const g = await f.ensureCapacity(jobRecord(job), TYPE, 5);
    expect(g).toMatchObject({ instanceType: TYPE, desired: 3, max: 3 });
    expect(g.instances).toHaveLength(3); // moto launches at once

    const name = groupName(job, TYPE);
    const lt = (await clients.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] }))).LaunchTemplates![0]!;
    expect(lt.LatestVersionNumber).toBe(1);
    expect(lt.Tags).toEqual(expect.arrayContaining([{ Key: 'gq:job', Value: job }, { Key: 'gq:instance-type', Value: TYPE }]));
    const data = (await clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name }))).LaunchTemplateVersions![0]!
      .LaunchTemplateData!;
    expect(data).toMatchObject({
      ImageId: imageId,
      InstanceType: TYPE,
      InstanceInitiatedShutdownBehavior: 'terminate',
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
      IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/gq-worker' },
    });
    expect(Buffer.from(data.UserData!, 'base64').toString()).toBe('#!/bin/bash\necho "gq agent"\n');
    expect(data.BlockDeviceMappings![0]!.Ebs).toMatchObject({ Encrypted: true, DeleteOnTermination: true });

    const asg = (await group(name))!;
    expect(asg).toMatchObject({ MinSize: 0, MaxSize: 3, DesiredCapacity: 3 });
    expect(asg.LaunchTemplate).toMatchObject({ LaunchTemplateName: name, Version: '$Latest' });
    expect(asg.VPCZoneIdentifier!.split(',').sort()).toEqual([...subnetIds].sort());
    expect(asg.Tags!.map((t) => [t.Key, t.Value])).toEqual(
      expect.arrayContaining([['gq:job', job], ['gq:instance-type', TYPE], ['project', 'gq-test']]),
    );

    // Again: no new template version, no second group; desired above max is clamped again.
    const again = await f.ensureCapacity(jobRecord(job), TYPE, 50);
    expect(again).toMatchObject({ desired: 3, max: 3 });
    expect(specs.filter((s) => s.job === job)).toHaveLength(1); // launch settings asked once
    await f.ensureCapacity(jobRecord(job), TYPE, 1);
    expect((await group(name))!.DesiredCapacity).toBe(1);
    await f.remove(job);
  });

  it('never scales below the busy (protected) workers; protect off lets it', async () => {
    const job = uniqueJob('busy');
    const f = fleet();
    const g = await f.ensureCapacity(jobRecord(job), TYPE, 2);
    const [a, b] = g.instances;
    await f.protect(job, TYPE, a!.id, true);
    await f.protect(job, TYPE, b!.id, true);
    let now = await f.ensureCapacity(jobRecord(job), TYPE, 0);
    expect(now.desired).toBe(2);
    expect(now.instances.filter((i) => i.protected).map((i) => i.id).sort()).toEqual([a!.id, b!.id].sort());
    await f.protect(job, TYPE, b!.id, false);
    now = await f.ensureCapacity(jobRecord(job), TYPE, 0);
    expect(now.desired).toBe(1);
    await f.remove(job);
  });

  it('terminateSelf leaves the group and lowers desired by one; also when already at 0', async () => {
    const job = uniqueJob('self');
    const f = fleet();
    const g = await f.ensureCapacity(jobRecord(job), TYPE, 3);
    const victim = g.instances[0]!.id;
    await f.protect(job, TYPE, victim, true); // a busy worker that finishes and leaves
    await f.terminateSelf(job, TYPE, victim);
    const asg = (await group(groupName(job, TYPE)))!;
    expect(asg.DesiredCapacity).toBe(2);
    expect(asg.Instances!.map((i) => i.InstanceId)).not.toContain(victim);

    // After a stop (desired 0), the remaining workers still leave cleanly.
    await f.stop(job);
    const [d] = await f.describe(job);
    expect(d!.desired).toBe(0);
    for (const i of d!.instances) await f.terminateSelf(job, TYPE, i.id);
    expect((await group(groupName(job, TYPE)))!.DesiredCapacity).toBe(0);
    await f.remove(job);
  });

  it('describe: healthy instances, no launch problem (moto records no failed activity); launched lists the job’s instances, gone ones too', async () => {
    const job = uniqueJob('seen');
    const f = fleet();
    const g = await f.ensureCapacity(jobRecord(job), TYPE, 2);
    const [d] = await f.describe(job);
    expect(d!.launchProblem).toBeUndefined();
    expect(d!.instances.map((i) => i.healthy)).toEqual([true, true]);
    const gone = g.instances[0]!.id;
    await f.terminateSelf(job, TYPE, gone);
    const seen = await f.launched(job);
    expect(seen.map((i) => i.id).sort()).toEqual(g.instances.map((i) => i.id).sort());
    expect(seen.every((i) => i.instanceType === TYPE && Date.parse(i.launchedAt) > Date.now() - 600_000)).toBe(true);
    expect(seen.find((i) => i.id === gone)!.state).toMatch(/shutting-down|terminated/);
    expect(await f.launched(uniqueJob('none'))).toEqual([]);
    await f.remove(job);
  });

  it('describe lists the job’s groups only; stop sets them all to 0', async () => {
    const job = uniqueJob('many');
    const other = uniqueJob('many');
    const f = fleet();
    await f.ensureCapacity(jobRecord(job), 't3.micro', 1);
    await f.ensureCapacity(jobRecord(job), 'c5.large', 2);
    await f.ensureCapacity(jobRecord(other), 't3.micro', 1);
    const groups = await f.describe(job);
    expect(groups.map((g) => [g.instanceType, g.desired])).toEqual([
      ['c5.large', 2],
      ['t3.micro', 1],
    ]);
    await f.stop(job);
    expect((await f.describe(job)).map((g) => g.desired)).toEqual([0, 0]);
    expect((await f.describe(other)).map((g) => g.desired)).toEqual([1]);
    await f.remove(job);
    await f.remove(other);
  });

  it('spot uses a mixed instances policy with no on-demand share', async () => {
    const job = uniqueJob('spot');
    await fleet({ spot: true }).ensureCapacity(jobRecord(job), TYPE, 1);
    const asg = (await group(groupName(job, TYPE)))!;
    expect(asg.MixedInstancesPolicy?.InstancesDistribution).toMatchObject({
      OnDemandBaseCapacity: 0,
      OnDemandPercentageAboveBaseCapacity: 0,
    });
    expect(asg.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification?.LaunchTemplateName).toBe(groupName(job, TYPE));
    await fleet().remove(job);
  });

  it('spot with stand-in types lists the group\'s own type first, then each stand-in, as overrides', async () => {
    const job = uniqueJob('standin');
    await fleet({ spot: true, spotAlternatives: ['t3a.micro', 't3.small', 't3a.micro'] }).ensureCapacity(jobRecord(job), TYPE, 1);
    const asg = (await group(groupName(job, TYPE)))!;
    expect(asg.MixedInstancesPolicy?.LaunchTemplate?.Overrides?.map((o) => o.InstanceType)).toEqual([TYPE, 't3a.micro', 't3.small']);
    await fleet().remove(job);
    // Without stand-ins there is no override; over 40 types in all is refused before any call.
    expect(overridesFor(TYPE)).toEqual({});
    expect(() => overridesFor(TYPE, Array.from({ length: 40 }, (_, i) => `c${i}.large`))).toThrow(UserError);
  });

  it('remove deletes groups and templates; removing again is fine; the agent side needs no launch settings', async () => {
    const job = uniqueJob('remove');
    const f = fleet();
    const g = await f.ensureCapacity(jobRecord(job), TYPE, 1);
    // An agent: no launchSpec, but it can protect itself and leave.
    const agent = new AsgFleet({ autoscaling: clients.autoscaling, ec2: clients.ec2 });
    await agent.protect(job, TYPE, g.instances[0]!.id, true);
    await expect(agent.ensureCapacity(jobRecord(uniqueJob('none')), TYPE, 1)).rejects.toThrow(/no launch settings/);

    await f.remove(job);
    expect(await group(groupName(job, TYPE))).toBeUndefined();
    const lts = await clients.ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: [job] }] }));
    expect(lts.LaunchTemplates ?? []).toEqual([]);
    expect(await f.describe(job)).toEqual([]);
    await f.remove(job);
    // Scaling a group by hand past its maximum is refused, as AWS does (moto alone allows it);
    // asking the fleet for more than the maximum is clamped to it.
    const j2 = uniqueJob('hand');
    await f.ensureCapacity(jobRecord(j2), TYPE, 1);
    await expect(
      clients.autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: groupName(j2, TYPE), DesiredCapacity: 7 })),
    ).rejects.toMatchObject({ name: 'ValidationError' });
    expect((await f.ensureCapacity(jobRecord(j2), TYPE, 9)).desired).toBe(3);
    await f.remove(j2);
  });
  it('asks for no public IPv4 address when the stack says so: the security groups go on the interface', async () => {
    const job = uniqueJob('private');
    await fleet({ associatePublicIp: false, securityGroupIds: ['sg-0123456789abcdef0'] }).ensureCapacity(jobRecord(job), TYPE, 0);
    const name = groupName(job, TYPE);
    const v = (await clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name }))).LaunchTemplateVersions![0]!;
    expect(v.LaunchTemplateData?.NetworkInterfaces).toMatchObject([{ DeviceIndex: 0, AssociatePublicIpAddress: false, Groups: ['sg-0123456789abcdef0'] }]);
    expect(v.LaunchTemplateData?.SecurityGroupIds ?? []).toEqual([]);
    // By default the subnet decides: no interface is specified, so no public address is asked for.
    const other = uniqueJob('public');
    await fleet({ securityGroupIds: ['sg-0123456789abcdef0'] }).ensureCapacity(jobRecord(other), TYPE, 0);
    const d = (await clients.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: groupName(other, TYPE) }))).LaunchTemplateVersions![0]!;
    expect(d.LaunchTemplateData?.NetworkInterfaces ?? []).toEqual([]);
    expect(d.LaunchTemplateData?.SecurityGroupIds).toEqual(['sg-0123456789abcdef0']);
  });

  it('the on-demand pool (job/on-demand.ts): a Spot group and an on-demand group for one type, tells them apart, and removes both', async () => {
    const job = uniqueJob('pool');
    const asked: Pool[] = [];
    const fleet = new AsgFleet({
      autoscaling: clients.autoscaling,
      ec2: clients.ec2,
      launchSpec: async (_job, _type, pool) => {
        asked.push(pool);
        return { imageId, subnetIds, userData: `#!/bin/bash\necho ${pool}\n`, maxInstances: 2, spot: pool === 'main', tags: {} };
      },
    });
    const rec = jobRecord(job);
    const main = await fleet.ensureCapacity(rec, TYPE, 1);
    const od = await fleet.ensureCapacity(rec, TYPE, 1, 'on-demand');
    expect(asked).toEqual(['main', 'on-demand']);
    expect(main.pool).toBeUndefined();
    expect(od.pool).toBe('on-demand');
    const groups = (await clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName(job, TYPE), groupName(job, TYPE, 'on-demand')] }))).AutoScalingGroups ?? [];
    const byName = Object.fromEntries(groups.map((g) => [g.AutoScalingGroupName, g]));
    expect(byName[groupName(job, TYPE)]?.MixedInstancesPolicy?.InstancesDistribution?.OnDemandPercentageAboveBaseCapacity).toBe(0);
    expect(byName[groupName(job, TYPE, 'on-demand')]?.MixedInstancesPolicy).toBeUndefined();
    expect(byName[groupName(job, TYPE, 'on-demand')]?.Tags?.find((t) => t.Key === 'gq:pool')?.Value).toBe('on-demand');

    const described = await fleet.describe(job);
    expect(described).toHaveLength(2);
    expect(groupOf(described, TYPE)?.desired).toBe(1);
    expect(groupOf(described, TYPE, 'on-demand')).toMatchObject({ pool: 'on-demand', desired: 1 });
    // Protection goes to the group the worker is in.
    const odInstance = (await fleet.describe(job)).find((g) => g.pool === 'on-demand')!.instances[0]!.id;
    await fleet.protect(job, TYPE, odInstance, true, 'on-demand');
    expect(groupOf(await fleet.describe(job), TYPE, 'on-demand')!.instances[0]!.protected).toBe(true);

    await fleet.stop(job);
    await fleet.remove(job);
    expect(await fleet.describe(job)).toEqual([]);
    const lts = (await clients.ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: [job] }] }))).LaunchTemplates ?? [];
    expect(lts).toEqual([]);
  }, 60_000);

  it('ensureGroup makes a missing group at 0 and leaves an existing one; raiseCapacity only raises, up to MaxSize', async () => {
    const job = uniqueJob('raise');
    const fleet = new AsgFleet({
      autoscaling: clients.autoscaling,
      ec2: clients.ec2,
      launchSpec: async () => ({ imageId, subnetIds, userData: '#!/bin/bash\n', maxInstances: 2, tags: {} }),
    });
    // The agent's side: no launch settings, and nothing to raise before the group exists.
    const agent = new AsgFleet({ autoscaling: clients.autoscaling, ec2: clients.ec2 });
    expect(await agent.raiseCapacity(job, TYPE, 1, 1, 'on-demand')).toBeUndefined();
    const rec = jobRecord(job);
    await fleet.ensureGroup(rec, TYPE, 'on-demand');
    const od = async () => (await group(groupName(job, TYPE, 'on-demand')))!;
    expect(await od()).toMatchObject({ DesiredCapacity: 0, MaxSize: 2 });
    expect(await agent.raiseCapacity(job, TYPE, 1, 1, 'on-demand')).toBe(1);
    // Made again (a later submit or reconcile): left at 1.
    await fleet.ensureGroup(rec, TYPE, 'on-demand');
    expect((await od()).DesiredCapacity).toBe(1);
    // Never lowered (a smaller backlog), clamped to MaxSize 2 (moto would accept 5).
    expect(await agent.raiseCapacity(job, TYPE, 0, 1, 'on-demand')).toBe(1);
    expect(await agent.raiseCapacity(job, TYPE, 5, 1, 'on-demand')).toBe(2);
    expect((await od()).DesiredCapacity).toBe(2);
    await fleet.remove(job);
  }, 60_000);
});

describe('notYetVisibleFor (a new instance profile EC2 does not know yet)', () => {
  const validation = (m = 'Invalid IamInstanceProfile') => Object.assign(new Error(m), { name: 'ValidationError' });

  it('retries any ValidationError for a fresh profile, only the not-yet-visible ones otherwise, never other errors', () => {
    expect(notYetVisibleFor({ instanceProfileFresh: true })(validation('something else'))).toBe(true);
    expect(notYetVisibleFor({ instanceProfileFresh: false })(validation('something else'))).toBe(false);
    expect(notYetVisibleFor({ instanceProfileFresh: true })(Object.assign(new Error('x'), { name: 'AccessDenied' }))).toBe(false);
  });

  it('bounded: retryWithBackoff gives up and passes the error on', async () => {
    let calls = 0;
    await expect(
      retryWithBackoff(async () => {
        calls++;
        throw validation('still invalid');
      }, notYetVisibleFor({ instanceProfileFresh: true }), { tries: 3, baseMs: 1, maxMs: 1 }),
    ).rejects.toMatchObject({ name: 'ValidationError' });
    expect(calls).toBe(3);
  });
});
