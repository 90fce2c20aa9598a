/**
 * What the fleet says about a running job, per instance type: why its instances do not start
 * (the group's launch problem) and how many failed their boot (boot-watch.ts, which also stops a
 * boot loop). Read by `gq status` and, every few seconds, by `gq submit --wait`, which gives up
 * (giveUpReason) instead of waiting for ever.
 */
import { UserError, type Backend, type FleetGroup, type JobRecord, type LaunchProblem } from '@gq/common';
import { countedFailures } from '@gq/common/aws/launch-failures';
import type { CommandContext } from './context.js';
import { checkBoots, type BootCheck } from './boot-watch.js';

export interface TypeReport extends BootCheck {
  launchProblem?: LaunchProblem;
  /** Instances that Auto Scaling holds unhealthy (it replaces them). */
  unhealthy: number;
}

export interface FleetReport {
  /** The job's groups as described (handed on to reconcile, so that it does not describe again). */
  groups: FleetGroup[];
  types: Record<string, TypeReport>;
}

/** Only a job that still has work is looked at: a finished one costs no fleet call. */
export async function fleetReport(ctx: CommandContext, backend: Backend, job: JobRecord): Promise<FleetReport | undefined> {
  if (job.cancelRequested || job.counts.queued + job.counts.running === 0) return undefined;
  const groups = await backend.fleet.describe(job.name);
  const boots = await checkBoots(backend, job, groups, {
    bootTimeoutSeconds: ctx.config.bootTimeout,
    bootFailures: ctx.config.bootFailures,
    log: ctx.log,
  });
  const types: Record<string, TypeReport> = {};
  for (const type of Object.keys(job.instanceTypes)) {
    // The type's own group, and a Spot job's on-demand one (job/on-demand.ts).
    const mine = groups.filter((g) => g.instanceType === type);
    const problem = mine.find((g) => g.launchProblem)?.launchProblem;
    const unhealthy = mine.reduce((n, g) => n + g.instances.filter((i) => !i.healthy).length, 0);
    types[type] = { ...boots[type]!, unhealthy, ...(problem ? { launchProblem: problem } : {}) };
  }
  return { groups, types };
}

/**
 * Why `--wait` must stop now, as a UserError (exit 1 with the reason and what to do), or
 * undefined: a type whose launches failed `launchFailures` times (a transient cause only once it
 * persisted), or whose group was stopped after too many failed boots.
 */
export function giveUpReason(job: JobRecord, report: FleetReport, limits: { launchFailures: number; bootFailures: number }, now = Date.now()): UserError | undefined {
  for (const [type, r] of Object.entries(report.types)) {
    const p = r.launchProblem;
    if (p && countedFailures(p, now) >= limits.launchFailures) {
      return new UserError(`Instances of ${type} are not starting: ${p.reason}`, {
        details: [`${p.failedLaunches} failed launch(es) since ${p.since}; the group keeps trying while the job exists.`],
        hint: `${p.advice} Then follow the job again with gq status ${job.name} --watch, or stop it with gq cancel ${job.name}.`,
      });
    }
    if (r.stopped) {
      return new UserError(`Instances of ${type} launched but never got to work: ${r.failedBoots} failed boot(s); its group is set to 0 so that no more are paid for.`, {
        details: r.reason ? [`last: ${r.reason}`] : [],
        hint:
          `See gq status ${job.name} and the boot log (gq logs ${job.name} --instance ID, or the EC2 console's "Get system log"). ` +
          'Usual causes: no route from the subnets to S3, DynamoDB and SQS (internet gateway, NAT or VPC endpoints), an AMI without ' +
          `bash/curl, or Node.js not installable. Fix it, then gq cancel ${job.name} and submit again.`,
      });
    }
  }
  return undefined;
}

/** The per-type fields of `gq status --json` (absent when the job has no work left). */
export interface TypeFleetJson {
  launchProblem?: LaunchProblem;
  boot?: { failed: number; limit: number; stopped: boolean; reason?: string };
  unhealthyInstances?: number;
}

export function typeFleetJson(r: TypeReport | undefined, limits: { bootFailures: number }): TypeFleetJson {
  if (!r) return {};
  return {
    ...(r.launchProblem ? { launchProblem: r.launchProblem } : {}),
    ...(r.failedBoots > 0 ? { boot: { failed: r.failedBoots, limit: limits.bootFailures, stopped: r.stopped, ...(r.reason ? { reason: r.reason } : {}) } } : {}),
    ...(r.unhealthy > 0 ? { unhealthyInstances: r.unhealthy } : {}),
  };
}

/** Lines for `gq status`, under the instance type's line. */
export function reportLines(r: TypeFleetJson): string[] {
  const lines: string[] = [];
  const p = r.launchProblem;
  if (p) {
    lines.push(`      not starting: ${p.reason}`);
    lines.push(`        ${p.failedLaunches} failed launch(es) since ${p.since}${p.transient ? ' (usually clears by itself)' : ''}`);
    lines.push(`        what to do: ${p.advice}`);
  }
  const b = r.boot;
  if (b?.stopped) {
    lines.push(`      stopped after ${b.failed} failed boot(s), group set to 0: ${b.reason ?? 'no reason recorded'}`);
  } else if (b) {
    lines.push(`      ${b.failed} failed boot(s) (the group is set to 0 after ${b.limit}): ${b.reason ?? 'no reason recorded'}`);
  }
  if (r.unhealthyInstances) lines.push(`      ${r.unhealthyInstances} instance(s) unhealthy (Auto Scaling replaces them)`);
  return lines;
}
