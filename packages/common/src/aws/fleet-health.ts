/**
 * What AWS says about a job's instances beyond the Auto Scaling group itself: the group's
 * recent scaling activities (why launches fail), the job's instances as EC2 remembers them (also
 * those already terminated: a boot that never reported), their console output, and the errors
 * that only mean "not yet" right after gq created something. Thin calls on SDK clients passed
 * in; the interpretation is in launch-failures.ts (pure).
 */
import { DescribeScalingActivitiesCommand, type AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, GetConsoleOutputCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { UserError } from '../errors.js';
import type { LaunchedInstance } from '../ports.js';
import { classifyLaunchFailure, type ScalingActivity } from './launch-failures.js';
import { JOB_TAG, TYPE_TAG } from './names.js';

function codeOf(err: unknown): string {
  const e = err as { name?: string; Code?: string } | null;
  return (typeof e === 'object' && e !== null && (e.Code ?? e.name)) || '';
}

function messageOf(err: unknown): string {
  return typeof err === 'object' && err !== null ? String((err as { message?: unknown }).message ?? '') : '';
}

/** The caller may not make the call (its IAM policy): what the call would tell is then unknown, not an error of gq. */
const DENIED = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException']);

async function unlessDenied<T>(fn: () => Promise<T>, otherwise: T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (DENIED.has(codeOf(err))) return otherwise;
    throw err;
  }
}

/**
 * Pages of activities read at most per group. DescribeScalingActivities returns at most 100 per
 * call ("MaxRecords: The default value is 100 and the maximum value is 100"), newest first, and
 * reading stops at the page that holds a successful launch, so normally one call.
 * https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html
 */
const MAX_ACTIVITY_PAGES = 3;
const MAX_RECORDS = 100;

/**
 * The group's activities since (and including) its last successful launch, newest first; none
 * when the caller may not read them (autoscaling:DescribeScalingActivities denied).
 */
export async function recentActivities(autoscaling: AutoScalingClient, group: string): Promise<ScalingActivity[]> {
  return unlessDenied(() => readActivities(autoscaling, group), []);
}

async function readActivities(autoscaling: AutoScalingClient, group: string): Promise<ScalingActivity[]> {
  const out: ScalingActivity[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_ACTIVITY_PAGES; page++) {
    const r = await autoscaling.send(
      new DescribeScalingActivitiesCommand({ AutoScalingGroupName: group, MaxRecords: MAX_RECORDS, ...(token ? { NextToken: token } : {}) }),
    );
    let succeeded = false;
    for (const a of r.Activities ?? []) {
      const act: ScalingActivity = {
        startTime: a.StartTime ? a.StartTime.getTime() : 0,
        statusCode: a.StatusCode ?? '',
        ...(a.StatusMessage ? { statusMessage: a.StatusMessage } : {}),
        ...(a.Description ? { description: a.Description } : {}),
      };
      out.push(act);
      if (act.statusCode === 'Successful' && /^Launching/i.test(act.description ?? '')) succeeded = true;
    }
    token = r.NextToken;
    if (succeeded || !token) break;
  }
  return out;
}

/** DescribeInstances: MaxResults 5..1000 with filters. */
const INSTANCES_PAGE = 1000;

/**
 * Every instance EC2 knows with the job's tag (set by the launch template and the group), any
 * state: terminated ones stay visible for about an hour after they end. None when the caller may
 * not list them (ec2:DescribeInstances denied): the boot check then relies on the records alone.
 */
export async function jobInstances(ec2: EC2Client, job: string): Promise<LaunchedInstance[]> {
  return unlessDenied(() => readJobInstances(ec2, job), []);
}

async function readJobInstances(ec2: EC2Client, job: string): Promise<LaunchedInstance[]> {
  const out: LaunchedInstance[] = [];
  let token: string | undefined;
  do {
    const r = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: `tag:${JOB_TAG}`, Values: [job] }], MaxResults: INSTANCES_PAGE, ...(token ? { NextToken: token } : {}) }),
    );
    for (const res of r.Reservations ?? []) {
      for (const i of res.Instances ?? []) {
        if (!i.InstanceId || i.Tags?.find((t) => t.Key === JOB_TAG)?.Value !== job) continue;
        const reason = i.StateReason?.Message ?? i.StateReason?.Code;
        out.push({
          id: i.InstanceId,
          instanceType: i.Tags?.find((t) => t.Key === TYPE_TAG)?.Value ?? i.InstanceType ?? '',
          launchedAt: (i.LaunchTime ?? new Date(0)).toISOString(),
          state: i.State?.Name ?? 'unknown',
          ...(reason ? { stateReason: reason } : {}),
        });
      }
    }
    token = r.NextToken;
  } while (token);
  return out.sort((a, b) => a.launchedAt.localeCompare(b.launchedAt) || a.id.localeCompare(b.id));
}

/** Errors that say gq may not read the console output (or that there is none): not a failure of gq. */
const NO_CONSOLE = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed', 'UnsupportedOperation']);

/** The instance's console output (UserData's lines included), if EC2 has one and gq may read it. */
export async function consoleOutput(ec2: EC2Client, instance: string): Promise<string | undefined> {
  try {
    const r = await ec2.send(new GetConsoleOutputCommand({ InstanceId: instance }));
    return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : undefined;
  } catch (err) {
    if (NO_CONSOLE.has(codeOf(err))) return undefined;
    throw err;
  }
}

/**
 * Right after CreateLaunchTemplate, Auto Scaling may not see the template yet: a ValidationError
 * whose message says the launch template does not exist. Auto Scaling has no specific error code
 * for it (ValidationError covers every bad parameter), so the message tells it apart; it is
 * retried only a few times, right after gq created the template.
 */
export function isTemplateNotYetVisible(err: unknown): boolean {
  return codeOf(err) === 'ValidationError' && /launch template.*(does not exist|not found)/i.test(messageOf(err));
}

/**
 * Right after an instance profile is created, EC2 may not see it yet ("Value (...) for parameter
 * iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", "Invalid
 * IamInstanceProfile"), as ValidationError from Auto Scaling or InvalidParameterValue from EC2.
 */
export function isProfileNotYetVisible(err: unknown): boolean {
  return ['ValidationError', 'InvalidParameterValue'].includes(codeOf(err)) && /iamInstanceProfile|IAM Instance Profile/i.test(messageOf(err));
}

/** Either "not yet" of the two above. */
export function isNotYetVisible(err: unknown): boolean {
  return isTemplateNotYetVisible(err) || isProfileNotYetVisible(err);
}

/**
 * CreateAutoScalingGroup refused with a ValidationError that names a known launch cause (the
 * launch template's AMI needs Marketplace terms, its architecture does not match the type...):
 * a UserError that says what to do. Anything else is returned as it is.
 */
export function explainRefusedGroup(err: unknown, instanceType: string): unknown {
  if (codeOf(err) !== 'ValidationError') return err;
  const message = messageOf(err);
  const info = classifyLaunchFailure(message, { instanceType });
  if (info.cause === 'other') return err;
  return new UserError(`AWS refused the Auto Scaling group for ${instanceType}: ${message}`, { hint: info.advice, cause: err });
}
