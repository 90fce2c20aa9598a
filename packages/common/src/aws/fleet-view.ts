/**
 * An Auto Scaling group as the Fleet port shows it: each instance's phase (the same words on both
 * backends, ports.ts InstancePhase), the group as a FleetGroup, and its busy workers.
 */
import type { AutoScalingGroup } from '@aws-sdk/client-auto-scaling';
import type { FleetGroup, FleetInstance, InstancePhase } from '../ports.js';
import { POOL_TAG, TYPE_TAG } from './names.js';

/** The value of tag `key`, if set. */
export function tagValue(tags: readonly { Key?: string; Value?: string }[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/**
 * The phase of an Auto Scaling lifecycle state. Its valid values
 * (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Instance.html, LifecycleState):
 * Pending, Pending:Wait, Pending:Proceed, Quarantined, InService, Terminating, Terminating:Wait,
 * Terminating:Proceed, Terminated, Detaching, Detached, EnteringStandby, Standby, and the warm
 * pool's Warmed:* (gq uses no warm pool: those count as starting, or leaving/gone).
 */
export function phaseOf(lifecycleState: string | undefined): InstancePhase {
  const s = lifecycleState ?? '';
  if (s === 'Terminated' || s === 'Detached' || s === 'Warmed:Terminated') return 'gone';
  if (/^(Terminating|Detaching|Warmed:Terminating)/.test(s)) return 'leaving';
  if (s === 'InService' || s === 'EnteringStandby' || s === 'Standby') return 'running';
  return 'starting';
}

export function toGroup(g: AutoScalingGroup): FleetGroup {
  const instances: FleetInstance[] = (g.Instances ?? []).map((i) => ({
    id: i.InstanceId ?? '',
    state: i.LifecycleState ?? 'unknown',
    phase: phaseOf(i.LifecycleState),
    protected: Boolean(i.ProtectedFromScaleIn),
    healthy: i.HealthStatus !== 'Unhealthy',
  }));
  return {
    instanceType: tagValue(g.Tags, TYPE_TAG) ?? g.AutoScalingGroupName ?? '',
    ...(tagValue(g.Tags, POOL_TAG) === 'on-demand' ? { pool: 'on-demand' as const } : {}),
    desired: g.DesiredCapacity ?? 0,
    max: g.MaxSize ?? 0,
    instances: instances.sort((a, b) => a.id.localeCompare(b.id)),
  };
}

const live = (p: InstancePhase): boolean => p === 'starting' || p === 'running';

/** Workers that are busy: protected from scale-in and not on their way out (leaving or gone). */
export function busyCount(g: AutoScalingGroup): number {
  return (g.Instances ?? []).filter((i) => i.ProtectedFromScaleIn && live(phaseOf(i.LifecycleState))).length;
}

export const AZ_REBALANCE = 'AZRebalance';

/** Whether the group's AZRebalance process is suspended (fleet.ts suspends it on every group). */
export function rebalanceSuspended(g: AutoScalingGroup): boolean {
  return (g.SuspendedProcesses ?? []).some((p) => p.ProcessName === AZ_REBALANCE);
}
