/**
 * The IAM role of one job's agents, created by `gq submit` and deleted by `gq clean`:
 *
 *   role             /gq/<stack>/gq-<job>-<region>   trusted by EC2 only, tagged gq-job=<job>,
 *                                                    JobAgentPolicy attached, JobRoleBoundary
 *                                                    as its permissions boundary
 *   instance profile /gq/<stack>/gq-<job>-<region>   holding that role, named in the launch templates
 *
 * The agent policy scopes everything by ${aws:PrincipalTag/gq-job}, the role's tag, which the
 * instance cannot change: each job's instances reach only that job (infra/gq.yaml).
 *
 * IAM limits checked before anything is written
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): role and profile
 * names ≤ 64 characters of [\w+=,.@-]; a path is "/" or "/…/" of printable ASCII, ≤ 512; tag keys
 * ≤ 128, values ≤ 256 characters.
 *
 * IAM is eventually consistent
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
 * a role or profile just created may be "not found" for a few seconds by the next call; those
 * calls are retried a bounded number of times. EC2 may take longer to see a new profile; the
 * fleet retries the group creation for that (LaunchSpec.instanceProfileFresh).
 */
import {
  AddRoleToInstanceProfileCommand,
  AttachRolePolicyCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteInstanceProfileCommand,
  DeleteRoleCommand,
  DetachRolePolicyCommand,
  EntityAlreadyExistsException,
  GetInstanceProfileCommand,
  GetRoleCommand,
  IAMClient,
  NoSuchEntityException,
  RemoveRoleFromInstanceProfileCommand,
  type InstanceProfile,
  type Role,
} from '@aws-sdk/client-iam';
import { GqError, UserError } from '@gq/common';
import { jobRoleName, ROLE_JOB_TAG } from '@gq/common/aws/index';

export interface JobRoleSettings {
  /** IAM path of the job roles (stack output JobRolePath), e.g. /gq/<stack>/. */
  path: string;
  /** Managed policy attached to every job role (JobAgentPolicyArn). */
  policyArn: string;
  /** Permissions boundary of every job role (JobRoleBoundaryArn). */
  boundaryArn: string;
  stack: string;
  region: string;
}

export interface JobRole {
  roleArn: string;
  profileArn: string;
  /** Whether the profile (or its role) was made just now: EC2 may not see it for some seconds. */
  fresh: boolean;
}

/** EC2 alone may assume a job role. */
export const EC2_TRUST_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});

const PATH_RE = /^\/([\x21-\x7e]+\/)?$/;
const NAME_RE = /^[\w+=,.@-]{1,64}$/;

/** What CreateRole will be given, checked against IAM's limits (pure). */
export function jobRoleRequest(s: JobRoleSettings, job: string) {
  const name = jobRoleName(job, s.region);
  if (!NAME_RE.test(name)) throw new GqError(`job role name "${name}" breaks IAM's name rules`);
  if (!PATH_RE.test(s.path) || s.path.length > 512) throw new GqError(`IAM path "${s.path}" from the stack is not valid`);
  const tags = { [ROLE_JOB_TAG]: job, 'gq:stack': s.stack };
  for (const [k, v] of Object.entries(tags)) {
    if (k.length > 128 || v.length > 256) throw new GqError(`IAM tag ${k}=${v} is too long`);
  }
  return {
    name,
    path: s.path,
    tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}

function isA(err: unknown, cls: { new (...a: never[]): Error }, name: string): boolean {
  return err instanceof cls || (err as { name?: string })?.name === name;
}
const notFound = (e: unknown) => isA(e, NoSuchEntityException, 'NoSuchEntityException');
const exists = (e: unknown) => isA(e, EntityAlreadyExistsException, 'EntityAlreadyExistsException');

/** Retry `fn` while it fails with "not found" just after a creation (bounded, ~15 s in all). */
async function whileNotVisible<T>(fn: () => Promise<T>, opts: { attempts?: number; delayMs?: number } = {}): Promise<T> {
  const attempts = opts.attempts ?? 6;
  let delay = opts.delayMs ?? 500;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!notFound(err) || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/**
 * A role or profile that does not exist has no path, so IAM cannot match it against the user
 * policy's /gq/<stack>/* resources and may answer AccessDenied rather than NoSuchEntity. So gq
 * never reads one before it knows it exists: ensure creates first (the path is in the request)
 * and reads only on EntityAlreadyExists; remove treats "denied" on a read like "not there"
 * (it deletes nothing it cannot see).
 */
const denied = (e: unknown) => ['AccessDenied', 'AccessDeniedException'].includes((e as { name?: string })?.name ?? '');

async function getRole(iam: IAMClient, name: string): Promise<Role | undefined> {
  try {
    return (await iam.send(new GetRoleCommand({ RoleName: name }))).Role;
  } catch (err) {
    if (notFound(err) || denied(err)) return undefined;
    throw err;
  }
}

async function getProfile(iam: IAMClient, name: string): Promise<InstanceProfile | undefined> {
  try {
    return (await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile;
  } catch (err) {
    if (notFound(err) || denied(err)) return undefined;
    throw err;
  }
}

/** A role of this name that gq did not make for this job is never used or changed. */
function checkOwned(role: Role, s: JobRoleSettings, job: string): void {
  const tag = role.Tags?.find((t) => t.Key === ROLE_JOB_TAG)?.Value;
  if (role.Path !== s.path || (role.Tags !== undefined && tag !== job)) {
    throw new UserError(`IAM role ${role.RoleName} exists but is not gq's role for job ${job} (path ${role.Path}, ${ROLE_JOB_TAG}=${tag ?? 'none'}).`, {
      hint: 'Choose another job --name, or delete that role if it is a left-over.',
    });
  }
}

/** Create (idempotently) the job's role and instance profile; their ARNs. */
export async function ensureJobRole(iam: IAMClient, s: JobRoleSettings, job: string): Promise<JobRole> {
  const req = jobRoleRequest(s, job);
  let fresh = false;
  let role: Role | undefined;
  try {
    role = (
      await iam.send(
        new CreateRoleCommand({
          RoleName: req.name,
          Path: req.path,
          AssumeRolePolicyDocument: EC2_TRUST_POLICY,
          PermissionsBoundary: s.boundaryArn,
          Description: `gq agents of job ${job} (stack ${s.stack})`,
          Tags: req.tags,
        }),
      )
    ).Role;
    fresh = true;
  } catch (err) {
    if (!exists(err)) throw err;
    // Made by an earlier (or a concurrent) submit of this job.
    role = await whileNotVisible(async () => (await iam.send(new GetRoleCommand({ RoleName: req.name }))).Role);
  }
  if (!role?.Arn) throw new GqError(`IAM role ${req.name} has no ARN`);
  checkOwned(role, s, job);
  // Idempotent: attaching an attached policy is a no-op.
  await whileNotVisible(() => iam.send(new AttachRolePolicyCommand({ RoleName: req.name, PolicyArn: s.policyArn })));

  let profile: InstanceProfile | undefined;
  try {
    profile = (await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: req.name, Path: req.path }))).InstanceProfile;
    fresh = true;
  } catch (err) {
    if (!exists(err)) throw err;
    profile = await whileNotVisible(async () => (await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: req.name }))).InstanceProfile);
  }
  if (!profile?.Arn) throw new GqError(`instance profile ${req.name} has no ARN`);
  if (profile.Path !== s.path) {
    throw new UserError(`Instance profile ${req.name} exists under another path (${profile.Path}).`, {
      hint: 'Choose another job --name, or delete that instance profile if it is a left-over.',
    });
  }
  const others = (profile.Roles ?? []).filter((r) => r.RoleName !== req.name);
  if (others.length) {
    throw new UserError(`Instance profile ${req.name} holds another role (${others.map((r) => r.RoleName).join(', ')}).`, {
      hint: 'Delete that instance profile if it is a left-over, then submit again.',
    });
  }
  if (!(profile.Roles ?? []).some((r) => r.RoleName === req.name)) {
    await whileNotVisible(() => iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: req.name, RoleName: req.name })));
    fresh = true;
  }
  return { roleArn: role.Arn, profileArn: profile.Arn, fresh };
}

/** Delete the job's instance profile and role (what is already gone is fine). */
export async function removeJobRole(iam: IAMClient, s: JobRoleSettings, job: string): Promise<void> {
  const { name } = jobRoleRequest(s, job);
  const role = await getRole(iam, name);
  if (role) checkOwned(role, s, job);
  const ignoreGone = (err: unknown) => {
    if (!notFound(err)) throw err;
  };
  const profile = await getProfile(iam, name);
  if (profile && profile.Path === s.path) {
    for (const r of profile.Roles ?? []) {
      await iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: name, RoleName: r.RoleName })).catch(ignoreGone);
    }
    await iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: name })).catch(ignoreGone);
  }
  if (!role) return;
  await iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: s.policyArn })).catch(ignoreGone);
  await iam.send(new DeleteRoleCommand({ RoleName: name })).catch(ignoreGone);
}
