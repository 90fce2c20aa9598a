/**
 * An agent raising a group of its own job (a Spot job's on-demand group, after it sent a task to
 * that pool's queue: agent/src/on-demand.ts): one Describe and at most one SetDesiredCapacity,
 * never lowering the group and never above its MaxSize (scaling.ts raisedDesired; moto accepts
 * a desired capacity above MaxSize, AWS refuses it: the desired capacity "must be greater than or
 * equal to the minimum size of the group and less than or equal to the maximum size",
 * https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html,
 * https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetDesiredCapacity.html).
 * The agent's role allows both calls (infra/gq.yaml OwnJobOnDemandCapacity), SetDesiredCapacity
 * on its own job's on-demand groups only.
 */
import { DescribeAutoScalingGroupsCommand, SetDesiredCapacityCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { raisedDesired } from './scaling.js';

/** The group's desired capacity after the raise, or undefined when there is no such group. */
export async function raiseGroup(
  autoscaling: AutoScalingClient,
  name: string,
  pending: number,
  slotsPerInstance: number,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const opts = signal ? { abortSignal: signal } : {};
  const out = await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }), opts);
  const g = out.AutoScalingGroups?.find((x) => x.AutoScalingGroupName === name);
  if (!g) return undefined;
  const current = g.DesiredCapacity ?? 0;
  const want = raisedDesired({ current, pending, slotsPerInstance, max: g.MaxSize ?? 0 });
  if (want <= current) return current;
  await autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: name, DesiredCapacity: want, HonorCooldown: false }), opts);
  return want;
}
