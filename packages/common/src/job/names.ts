/**
 * Job names: what is allowed, and a valid name derived from a job file's name. This is gq's one
 * job-name rule: the CLI checks it on every job name it is given, and the AWS names (aws/names.ts)
 * refuse a name that breaks it.
 *
 * A job name ends up in S3 keys (`jobs/<job>/...`), DynamoDB keys, SQS queue names, Auto Scaling
 * group, launch template and IAM role names. The rules below are safe for all of them:
 * - SQS: a queue name has at most 80 of [A-Za-z0-9_-]
 *   (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html);
 *   `gq-<job>-<instance type>-dlq` is 3 + 40 + 1 + 32 (MAX_INSTANCE_TYPE_LENGTH) + 4 = 80.
 * - Launch templates: 3–128 of [A-Za-z0-9().\-/_]
 *   (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html);
 *   Auto Scaling groups: at most 255
 *   (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html).
 * - IAM roles: at most 64 of [A-Za-z0-9+=,.@_-]; `gq-<job>-<region>` is at most 3 + 40 + 1 + 14 = 58
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
 * Lower case only: IAM does not tell names apart by case, so two jobs must not differ by case alone.
 */
import { randomInt } from 'node:crypto';
import { GqError, UserError } from '../errors.js';

export const JOB_NAME_MIN_LENGTH = 3;
export const JOB_NAME_MAX_LENGTH = 40;

/** Names that would be confusing on the command line or clash with gq's own resources. */
export const RESERVED_JOB_NAMES: ReadonlySet<string> = new Set([
  'gq',
  'aws',
  'all',
  'local',
  'status',
  'jobs',
  'bundles',
  'agent',
  'default',
  'none',
  'help',
]);

/** The rules, for --help and error hints. */
export const JOB_NAME_RULES =
  `A job name has ${JOB_NAME_MIN_LENGTH}–${JOB_NAME_MAX_LENGTH} characters: lower-case letters a–z, digits and ` +
  `hyphens (-). It starts with a letter, does not end with a hyphen, has no "--", and is not one of: ` +
  `${[...RESERVED_JOB_NAMES].join(', ')}.`;

const ALLOWED = /^[a-z0-9-]$/;

/**
 * What is wrong with `name`, one sentence per broken rule, most important first; empty when the
 * name is valid.
 */
export function jobNameProblems(name: string): string[] {
  if (name.length === 0) return ['the job name is empty'];
  const out: string[] = [];
  if (RESERVED_JOB_NAMES.has(name.toLowerCase())) out.push(`"${name.toLowerCase()}" is reserved by gq`);
  if (/[/\\]/.test(name) || name.includes('..') || name === '.' || name.startsWith('~')) {
    const found: string[] = [...new Set([...name].filter((c) => c === '/' || c === '\\'))];
    if (name.includes('..')) found.push('..');
    if (name.startsWith('~')) found.push('~');
    out.push(
      `a job name cannot contain path characters (${found.map((c) => `"${c}"`).join(', ') || `"${name}"`}); it is a name, not a file path`,
    );
  }
  if (name.length > JOB_NAME_MAX_LENGTH) {
    out.push(`it is ${name.length} characters long; the limit is ${JOB_NAME_MAX_LENGTH}`);
  } else if (name.length < JOB_NAME_MIN_LENGTH) {
    out.push(`it is ${name.length} character${name.length === 1 ? '' : 's'} long; the minimum is ${JOB_NAME_MIN_LENGTH}`);
  }
  if (/[A-Z]/.test(name)) out.push('it has upper-case letters; job names are lower case');
  const bad = [...new Set([...name].filter((c) => !ALLOWED.test(c) && !/[A-Z/\\]/.test(c) && !(c === '.' && name.includes('..'))))];
  if (bad.length > 0) {
    const shown = bad.slice(0, 8).map((c) => (c === ' ' ? 'space' : JSON.stringify(c)));
    out.push(`it contains ${shown.join(', ')}; only a–z, 0–9 and - are allowed`);
  }
  if (!/^[a-zA-Z]/.test(name)) out.push(`it starts with ${JSON.stringify(name[0])}; a job name starts with a letter (a–z)`);
  if (name.endsWith('-')) out.push('it ends with a hyphen');
  if (name.includes('--')) out.push('it contains "--" (two hyphens in a row)');
  return out;
}

/** Whether `name` is a valid job name. */
export function isValidJobName(name: string): boolean {
  return jobNameProblems(name).length === 0;
}

/** Throws a UserError saying which rule `name` breaks, with a valid name to use instead when there is one. */
export function validateJobName(name: string): void {
  const problems = jobNameProblems(name);
  if (problems.length === 0) return;
  const suggestion = suggestJobName(name);
  const first = problems[0] ?? '';
  throw new UserError(`Invalid job name ${JSON.stringify(name)}: ${first}.`, {
    details: problems.length > 1 ? problems : [],
    hint: `${suggestion && suggestion !== name ? `Did you mean "${suggestion}"? ` : ''}${JOB_NAME_RULES}`,
  });
}

/**
 * A slug of `s`: accents dropped, lower case, every run of other characters made one hyphen, no
 * hyphen at either end. May be empty.
 */
function slug(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Makes a slug a valid name of at most `max` characters (prefix, truncation, reserved words). */
function fit(base: string, max: number): string {
  let s = base || 'job';
  if (!/^[a-z]/.test(s)) s = `job-${s}`;
  s = s.slice(0, max).replace(/-+$/, '');
  return s;
}

/** A valid job name close to `name` (`My_Job` → `my-job`), or undefined. */
export function suggestJobName(name: string): string | undefined {
  const base = name.split(/[/\\]/).filter(Boolean).pop() ?? '';
  let s = fit(slug(base), JOB_NAME_MAX_LENGTH);
  if (s.length < JOB_NAME_MIN_LENGTH || RESERVED_JOB_NAMES.has(s)) s = `${s}-job`;
  return isValidJobName(s) ? s : undefined;
}

const SUFFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Four random characters from a–z and 0–9 (1.7 million possibilities). */
export function randomJobSuffix(length = 4): string {
  let s = '';
  for (let i = 0; i < length; i++) s += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
  return s;
}

/**
 * A job name made from a job file's name: the file stem as a slug, a hyphen and a random
 * 4-character suffix (`config/jobdetails.csv` → `jobdetails-k3x9`). Always valid: accents are
 * dropped, other characters become hyphens, a stem that does not start with a letter gets `job-`
 * in front, and a long stem is cut to fit 40 characters. `suffix` replaces the random suffix
 * (slugged; at most 12 characters; '' for none).
 */
export function deriveJobName(jobFilePath: string, suffix: string = randomJobSuffix()): string {
  const file = jobFilePath.split(/[/\\]/).filter(Boolean).pop() ?? '';
  const stem = file.replace(/\.[^.]*$/, '');
  const sfx = slug(suffix).slice(0, 12).replace(/-+$/, '');
  const room = JOB_NAME_MAX_LENGTH - (sfx ? sfx.length + 1 : 0);
  let name = fit(slug(stem), room);
  if (sfx) name = `${name}-${sfx}`;
  if (name.length < JOB_NAME_MIN_LENGTH || RESERVED_JOB_NAMES.has(name)) name = `${fit(name, JOB_NAME_MAX_LENGTH - 4)}-job`;
  if (!isValidJobName(name)) {
    throw new GqError(`bug: derived job name ${JSON.stringify(name)} from ${JSON.stringify(jobFilePath)} is not valid`);
  }
  return name;
}
