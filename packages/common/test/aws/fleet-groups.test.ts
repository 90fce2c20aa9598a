/**
 * AsgFleet group settings on moto: AZRebalance suspended on every gq group (right after it is
 * created, and on a group that lacks it), idempotently; SetInstanceProtection errors reach the
 * caller (the agent records protection only after AWS accepted it: agent/src/protection.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeAutoScalingGroupsCommand, ResumeProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeImagesCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import type { AwsClients } from '../../src/aws/clients.js';
import { AsgFleet, rebalanceSuspended } from '../../src/aws/fleet.js';
import { groupName } from '../../src/aws/names.js';
import type { JobRecord } from '../../src/job/model.js';
import { emptyCounts } from '../../src/job/states.js';
import { makeSpec } from '../contract/status.contract.js';
import { uniqueJob } from '../contract/util.js';
import { describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';


const TYPE = 't3.micro';

function jobRecord(name: string): JobRecord {
  return { ...makeSpec(name, 10), backend: 'aws', counts: emptyCounts(), cancelRequested: false, updatedAt: new Date().toISOString() };
}

describeAws('AsgFleet group settings (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let fleet: AsgFleet;

  beforeAll(async () => {
    moto = (await startMoto())!;
    clients = motoClients(moto.endpoint);
    const imageId = (await clients.ec2.send(new DescribeImagesCommand({}))).Images![0]!.ImageId!;
    const subnetIds = (await clients.ec2.send(new DescribeSubnetsCommand({}))).Subnets!.slice(0, 2).map((s) => s.SubnetId!);
    fleet = new AsgFleet({
      autoscaling: clients.autoscaling,
      ec2: clients.ec2,
      launchSpec: async () => ({ imageId, subnetIds, userData: '#!/bin/bash\n', maxInstances: 2, tags: {} }),
    });
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  const group = async (name: string) =>
    (await clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
  const suspended = async (name: string) => (await group(name)).SuspendedProcesses?.map((p) => p.ProcessName).sort();

  it('a new group has AZRebalance suspended, and nothing else', async () => {
    const job = uniqueJob('rebalance');
    await fleet.ensureCapacity(jobRecord(job), TYPE, 1);
    expect(await suspended(groupName(job, TYPE))).toEqual(['AZRebalance']);
    expect(rebalanceSuspended(await group(groupName(job, TYPE)))).toBe(true);
  });

  it('is idempotent, and suspends it again on a group that lacks it', async () => {
    const job = uniqueJob('rebalance-again');
    const name = groupName(job, TYPE);
    await fleet.ensureCapacity(jobRecord(job), TYPE, 1);
    await fleet.ensureCapacity(jobRecord(job), TYPE, 2);
    expect(await suspended(name)).toEqual(['AZRebalance']);
    await clients.autoscaling.send(new ResumeProcessesCommand({ AutoScalingGroupName: name, ScalingProcesses: ['AZRebalance'] }));
    expect(await suspended(name)).toEqual([]);
    await fleet.ensureCapacity(jobRecord(job), TYPE, 2);
    expect(await suspended(name)).toEqual(['AZRebalance']);
  });

  it('protect passes AWS refusals on (the caller must not record it as done)', async () => {
    const job = uniqueJob('protect-refused');
    await expect(fleet.protect(job, TYPE, 'i-00000000000000000', true)).rejects.toThrow();
  });
});
