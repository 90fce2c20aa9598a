/**
 * Names of the per-job AWS resources (pure). Job names follow gq's one rule (job/names.ts: 3–40
 * lower-case letters, digits and hyphens, starting with a letter); instance types look like
 * "c5.2xlarge" or "u-6tb1.metal".
 *
 *   queue            gq-<job>-<type with . → _>          (SQS: ≤ 80 of [A-Za-z0-9_-])
 *   dead letters     gq-<job>-<type with . → _>-dlq
 *   ASG / template   gq-<job>-<type>                     (ASG ≤ 255, template ≤ 128 of [A-Za-z0-9().\-/_])
 *   on-demand pool   the same names + -od (queue gq-<job>-<type>-od, its gq-<job>-<type>-od-dlq,
 *                    group and template gq-<job>-<type>-od): a Spot job's fallback (job/on-demand.ts)
 *
 * A name that would pass a limit keeps its head and ends in a short hash of the whole name.
 */
import { createHash } from 'node:crypto';
import { GqError } from '../errors.js';
import { jobNameProblems } from '../job/names.js';
import type { Pool } from '../job/on-demand.js';

/** The one job-name rule (job/names.ts), also here for the AWS code that builds names. */
export { isValidJobName } from '../job/names.js';

export const NAME_PREFIX = 'gq';
/** Tag carried by every resource of a job. */
export const JOB_TAG = 'gq:job';
/** Tag carrying the instance type of an ASG / launch template. */
export const TYPE_TAG = 'gq:instance-type';
/** Tag of the on-demand pool's group, template and queues (value "on-demand"); absent on a type's own. */
export const POOL_TAG = 'gq:pool';

const SQS_MAX = 80;
const DLQ_SUFFIX = '-dlq';
/** The on-demand pool's names end so; a name too long for its limit ends in a hash of the whole name, -od included, so the two pools never share one. */
const POOL_SUFFIX = { main: '', 'on-demand': '-od' } as const satisfies Record<Pool, string>;
const TEMPLATE_MAX = 128;
const ASG_MAX = 255;

function checkJob(job: string): void {
  const problems = jobNameProblems(job);
  if (problems.length > 0) throw new GqError(`invalid job name "${job}": ${problems[0]}`);
}

function fit(name: string, max: number): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, max - hash.length - 1)}-${hash}`;
}

function cleanType(type: string, allowed: RegExp): string {
  if (!type) throw new GqError('empty instance type');
  return type.replace(allowed, '_');
}

/** Main queue of (job, instance type) and pool. */
export function queueName(job: string, instanceType: string, pool: Pool = 'main'): string {
  checkJob(job);
  const type = cleanType(instanceType.replace(/\./g, '_'), /[^A-Za-z0-9_-]/g);
  return fit(`${NAME_PREFIX}-${job}-${type}${POOL_SUFFIX[pool]}`, SQS_MAX - DLQ_SUFFIX.length);
}

/** Dead-letter queue of (job, instance type) and pool. */
export function deadLetterQueueName(job: string, instanceType: string, pool: Pool = 'main'): string {
  return queueName(job, instanceType, pool) + DLQ_SUFFIX;
}

/** Auto Scaling group of (job, instance type) and pool. */
export function groupName(job: string, instanceType: string, pool: Pool = 'main'): string {
  checkJob(job);
  return fit(`${NAME_PREFIX}-${job}-${cleanType(instanceType, /[^A-Za-z0-9().\-/_]/g)}${POOL_SUFFIX[pool]}`, Math.min(ASG_MAX, TEMPLATE_MAX));
}

/** Launch template of (job, instance type) and pool: the same name as the group. */
export function launchTemplateName(job: string, instanceType: string, pool: Pool = 'main'): string {
  return groupName(job, instanceType, pool);
}

/** Tag of a per-job IAM role: its policy reads it as ${aws:PrincipalTag/gq-job} (infra/gq.yaml). */
export const ROLE_JOB_TAG = 'gq-job';
/**
 * IAM role names: at most 64 of [A-Za-z0-9+=,.@_-], unique in the account whatever their path
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
 */
const ROLE_MAX = 64;
const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/**
 * The IAM role and instance profile of a job's agents: gq-<job>-<region>. IAM is global and job
 * names are unique only per region, so the region is part of the name. At most 3 + 40 + 1 + 14
 * = 58 characters for every region today; longer ones end in a hash like the other names.
 */
export function jobRoleName(job: string, region: string): string {
  checkJob(job);
  if (!REGION_RE.test(region)) throw new GqError(`invalid AWS region "${region}"`);
  return fit(`${NAME_PREFIX}-${job}-${region}`, ROLE_MAX);
}
