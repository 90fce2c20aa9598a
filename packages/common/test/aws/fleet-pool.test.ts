/**
 * AsgFleet's on-demand pool on moto (job/on-demand.ts): a second group and template per type,
 * gq-<job>-<type>-od, tagged gq:pool, apart from the type's own; describe tells them apart, protect
 * and remove reach it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeImagesCommand, DescribeLaunchTemplatesCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from '../../src/aws/clients.js';
import { AsgFleet } from '../../src/aws/fleet.js';
import { groupName } from '../../src/aws/names.js';
import { groupOf } from '../../src/ports.js';
import type { Pool } from '../../src/job/on-demand.js';
import type { JobRecord } from '../../src/job/model.js';
import { emptyCounts } from '../../src/job/states.js';
import { makeSpec } from '../contract/status.contract.js';
import { uniqueJob } from '../contract/util.js';
import { describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';

const TYPE = 't3.micro';

describeAws('AsgFleet: the on-demand pool (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let imageId: string;
  let subnetIds: string[];

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

  it('makes a Spot group and an on-demand group for one type, tells them apart, and removes both', async () => {
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
    const rec: JobRecord = { ...makeSpec(job, 2), backend: 'aws', counts: emptyCounts(), cancelRequested: false, updatedAt: new Date().toISOString() };
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
});
