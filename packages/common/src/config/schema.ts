/**
 * Folder common/src/config: the settings (schema, and loading them from flags, environment and file).
 *
 * Every gq setting, in one schema. Each has a CLI flag, an environment variable (GQ_ + upper snake
 * case) and a config-file key, in that order of precedence, then the default here.
 */
import * as z from 'zod';
import { parseDuration } from '../time.js';
import { MAX_SLOTS } from '../job/slots.js';
import { DEFAULT_SPOT_INTERRUPTIONS } from '../job/on-demand.js';

const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const s = parseDuration(v);
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (examples: 90, 90s, 15m, 2h, 1d)` });
    return z.NEVER;
  }
  return s;
});
const intFromEnv = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** An EC2 instance type name: family.size, such as c5.2xlarge or u-6tb1.metal. */
const INSTANCE_TYPE = /^[a-z0-9-]{1,16}\.[a-z0-9-]{1,16}$/;
/**
 * Instance types an Auto Scaling group may have at most, its own included
 * (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateOverrides.html).
 */
export const MAX_GROUP_TYPES = 40;

/** "c5.xlarge=c5a.xlarge,c6i.xlarge;m5.large=m5a.large" as an object; undefined when malformed. */
export function parseAlternatives(text: string): Record<string, string[]> | undefined {
  const out: Record<string, string[]> = {};
  for (const part of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)\s*=\s*(\S.*)$/.exec(part);
    if (!m) return undefined;
    out[m[1]!] = m[2]!.split(',').map((t) => t.trim()).filter(Boolean);
  }
  return out;
}

export const configShape = {
  backend: z.enum(['local', 'aws']).default('local'),
  /** Local backend data folder. */
  home: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  profile: z.string().min(1).optional(),
  /** CloudFormation stack that holds the shared resources (`gq setup`). */
  stack: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/).default('gq'),
  /** Local backend: worker processes per job. */
  workers: intFromEnv(1, 256).optional(),
  /** Extra attempts after a failed one. */
  retries: intFromEnv(0, 20).default(2),
  /** Per-task timeout, 0 = none. */
  timeout: duration.default(0),
  installTimeout: duration.default(1800),
  installRetries: intFromEnv(0, 10).default(2),
  /** A worker leaves after the queue has been empty this long. */
  idle: duration.optional(),
  /**
   * A worker that cannot reach AWS (or the local store) this long leaves: on EC2 the instance
   * powers off and Auto Scaling replaces it if work remains.
   */
  unreachableTimeout: duration.refine((v) => v >= 1, { message: 'must be at least 1 second' }).default(1800),
  /** Message visibility and task lease; renewed by the heartbeat. */
  visibility: duration.default(300),
  /**
   * Tasks one worker runs at once (an instance on AWS, a worker process locally), each in its own
   * folder: one number, or per instance type, family or "*" (job/slots.ts).
   */
  slots: z.union([intFromEnv(1, MAX_SLOTS), z.record(z.string(), intFromEnv(1, MAX_SLOTS))]).default(1),
  /** AWS: instances per instance type at most. */
  maxInstances: intFromEnv(1, 10000).default(20),
  /**
   * AWS: AMI per instance type (or family, or "*" for all): al2023 (default), ubuntu-22.04,
   * ubuntu-24.04, ssm:/NAME, gurobi, an AMI id, OWNER/NAME-PATTERN or NAME-PATTERN (Amazon's own).
   */
  ami: z.record(z.string(), z.string()).default({}),
  /** AWS: Marketplace product code that `ami: "gurobi"` looks images up by (owner aws-marketplace). */
  gurobiProductCode: z.string().regex(/^[a-z0-9]{10,40}$/).optional(),
  /** AWS: request Spot instances. */
  spot: z.boolean().default(false),
  /**
   * AWS, with spot: per instance type, stand-in types its group may launch too (same architecture,
   * as many vCPUs and as much memory or more: checked at submit), to widen Spot capacity. A JSON
   * object, or "TYPE=ALT,ALT;TYPE=ALT" (the flag and the environment).
   */
  spotAlternatives: z
    .union([z.record(z.string(), z.array(z.string())), z.string()])
    .transform((v, ctx) => {
      const out = typeof v === 'string' ? parseAlternatives(v) : v;
      if (out === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not TYPE=ALT,ALT;TYPE=ALT` });
        return z.NEVER;
      }
      for (const [type, alts] of Object.entries(out)) {
        const bad = [type, ...alts].find((t) => !INSTANCE_TYPE.test(t));
        if (bad !== undefined) {
          ctx.addIssue({ code: 'custom', message: `"${bad}" is not an instance type` });
          return z.NEVER;
        }
        if (alts.length + 1 > MAX_GROUP_TYPES) {
          ctx.addIssue({ code: 'custom', message: `${type} has ${alts.length} stand-ins; a group takes at most ${MAX_GROUP_TYPES} types in all` });
          return z.NEVER;
        }
      }
      return out;
    })
    .default({}),
  /**
   * AWS, with spot: after this many Spot interruptions of one task, its next attempt runs on the
   * type's on-demand group (job/on-demand.ts); 0 = never fall back.
   */
  spotInterruptions: intFromEnv(0, 100).default(DEFAULT_SPOT_INTERRUPTIONS),
  /** AWS: `--wait` gives up after this many failed launches of a group (scaling activities). */
  launchFailures: intFromEnv(1, 100).default(3),
  /** AWS: an instance that has not reported this long after its launch counts as a failed boot. */
  bootTimeout: duration.default(900),
  /** AWS: after this many failed boots of an instance type its group is set to 0. */
  bootFailures: intFromEnv(1, 100).default(3),
  /** AWS: tasks may use the instance role (default: no AWS credentials reach a task). */
  taskAwsAccess: z.boolean().default(false),
  /** Stop a job at this spend in USD (no new instance or task; running tasks finish); none by default. */
  maxCost: z.coerce.number().positive().optional(),
  /** Where `gq setup` downloads the pinned Node.js build for the instances (nodejs.org's layout). */
  nodeMirror: z.string().regex(/^https?:\/\/[^\s]+$/).default('https://nodejs.org/dist'),
};

export const configSchema = z.object(configShape).strict();
export type Config = z.output<typeof configSchema>;
export type SettingName = keyof typeof configShape;

/** What each setting takes, for error messages ("it must be ..."). */
export const SETTING_EXPECTS: Record<SettingName, { what: string; example: string }> = {
  backend: { what: '"local" or "aws"', example: 'aws' },
  home: { what: 'a folder path', example: '/data/gq' },
  region: { what: 'an AWS region such as us-east-1', example: 'us-east-1' },
  profile: { what: 'the name of a profile in ~/.aws/config', example: 'default' },
  stack: { what: 'a CloudFormation stack name (a letter, then letters, digits and hyphens; at most 128)', example: 'gq' },
  workers: { what: 'a whole number from 1 to 256', example: '4' },
  retries: { what: 'a whole number from 0 to 20', example: '2' },
  timeout: { what: 'a duration such as 90s, 30m, 6h or 1h30m (0 = none)', example: '6h' },
  installTimeout: { what: 'a duration such as 90s, 30m or 1h', example: '30m' },
  installRetries: { what: 'a whole number from 0 to 10', example: '2' },
  idle: { what: 'a duration such as 90s, 5m or 1h', example: '2m' },
  unreachableTimeout: { what: 'a duration of at least 1s, such as 10m, 30m or 1h', example: '30m' },
  visibility: { what: 'a duration such as 90s, 5m or 1h', example: '5m' },
  slots: { what: `a whole number from 1 to ${MAX_SLOTS}, or an object from instance type, family or "*" to one`, example: '4' },
  maxInstances: { what: 'a whole number from 1 to 10000', example: '20' },
  ami: {
    what: 'an object from instance type, family or "*" to al2023, ubuntu-22.04, ubuntu-24.04, ssm:/NAME, gurobi, an AMI id or OWNER/NAME-PATTERN',
    example: '{"*": "ubuntu-24.04"}',
  },
  gurobiProductCode: { what: 'an AWS Marketplace product code (lower-case letters and digits)', example: 'abcdefghij0123456789abcde' },
  spot: { what: 'true or false', example: 'true' },
  spotAlternatives: { what: 'per instance type a list of stand-in types, as {"TYPE": ["ALT", ...]} or TYPE=ALT,ALT;TYPE=ALT', example: 'c5.xlarge=c5a.xlarge,c6i.xlarge' },
  spotInterruptions: { what: 'a whole number from 0 to 100 (0 = never move a task to on-demand)', example: '3' },
  launchFailures: { what: 'a whole number from 1 to 100', example: '3' },
  bootTimeout: { what: 'a duration such as 10m, 15m or 30m', example: '15m' },
  bootFailures: { what: 'a whole number from 1 to 100', example: '3' },
  taskAwsAccess: { what: 'true or false', example: 'true' },
  maxCost: { what: 'an amount in US dollars above 0', example: '25' },
  nodeMirror: { what: 'an http(s) URL laid out like https://nodejs.org/dist', example: 'https://nodejs.org/dist' },
};

/** GQ_MAX_INSTANCES for maxInstances, etc. */
export function envNameOf(setting: string): string {
  return 'GQ_' + setting.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}
