/**
 * The settings flags of the command line: each declared once (SETTING_FLAGS), given to the
 * commands that read it (COMMAND_SETTINGS), and mapped to the configuration's keys (settingsFrom).
 */
import type { ArgumentsCamelCase, Argv, InferredOptionTypes } from 'yargs';

/** Flags that are settings (same names as the config keys, kebab-case on the command line). */
export const SETTING_FLAGS = {
  backend: { choices: ['local', 'aws'] as const, describe: 'Where to run: local (this machine) or aws (env GQ_BACKEND)' },
  workers: { type: 'number', describe: 'Local backend: worker processes (default: number of CPUs ÷ slots)' },
  slots: { type: 'number', describe: 'Tasks one worker (instance or local worker process) runs at once (default 1; per type in the config file)' },
  retries: { type: 'number', describe: 'Extra attempts for a failed task (default 2)' },
  timeout: { type: 'string', describe: 'Per-task timeout, e.g. 90s, 30m, 2h (default: none)' },
  idle: { type: 'string', describe: 'A worker leaves after this long without work, or at once when nothing is left that it could run' },
  visibility: { type: 'string', describe: 'Task lease / message visibility, renewed while running (default 5m)' },
  'unreachable-timeout': { type: 'string', describe: 'A worker that cannot reach AWS this long leaves (default 30m)' },
  'install-timeout': { type: 'string', describe: 'Timeout of one install attempt (default 30m)' },
  'install-retries': { type: 'number', describe: 'Extra install attempts (default 2)' },
  'max-instances': { type: 'number', describe: 'AWS: instances per instance type at most (default 20)' },
  'max-cost': { type: 'number', describe: 'Stop the job at this spend, USD: no new instance or task, running tasks finish (default: none)' },
  region: { type: 'string', describe: 'AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile\'s region)' },
  profile: { type: 'string', describe: 'AWS: profile in ~/.aws/config (default: AWS_PROFILE, else default)' },
  stack: { type: 'string', describe: 'AWS: name of the gq CloudFormation stack (default gq)' },
  spot: { type: 'boolean', describe: 'AWS: use Spot instances' },
  'spot-alternatives': { type: 'string', describe: 'AWS, with --spot: stand-in types per type, e.g. c5.xlarge=c5a.xlarge,c6i.xlarge;m5.large=m5a.large' },
  'spot-interruptions': { type: 'number', describe: 'AWS, with --spot: after this many interruptions of one task, run it on on-demand (default 3; 0 = never)' },
  'gurobi-product-code': { type: 'string', describe: 'AWS: Marketplace product code of the Gurobi image (ami "gurobi")' },
  'launch-failures': { type: 'number', describe: 'AWS: --wait gives up after this many failed launches of a group (default 3)' },
  'boot-timeout': { type: 'string', describe: 'AWS: an instance silent this long after launch failed its boot (default 15m)' },
  'boot-failures': { type: 'number', describe: "AWS: after this many failed boots a type's group is set to 0 (default 3)" },
  'task-aws-access': { type: 'boolean', describe: 'AWS: let tasks use the instance role (default: tasks get no AWS credentials)' },
  'node-mirror': { type: 'string', describe: 'gq setup: where to download the instances\' Node.js build (default https://nodejs.org/dist)' },
} as const;

export type SettingFlag = keyof typeof SETTING_FLAGS;

/**
 * Which settings each command reads, so that its --help lists only those (the configuration file
 * and GQ_* variables still give every setting to every command). BACKEND opens the backend;
 * WORKERS start workers (submit, retry); WATCH is what following a job reads (the fleet report).
 */
const BACKEND = ['backend', 'region', 'profile', 'stack'] as const satisfies readonly SettingFlag[];
const WATCH = ['boot-timeout', 'boot-failures'] as const satisfies readonly SettingFlag[];
const WORKERS = ['workers', 'slots', 'max-instances', 'spot', 'spot-alternatives', 'gurobi-product-code', 'task-aws-access', 'launch-failures', ...WATCH] as const satisfies readonly SettingFlag[];
const JOB = ['retries', 'timeout', 'idle', 'visibility', 'unreachable-timeout', 'install-timeout', 'install-retries', 'spot-interruptions'] as const satisfies readonly SettingFlag[];
export const COMMAND_SETTINGS = {
  submit: [...BACKEND, ...JOB, 'max-cost', ...WORKERS],
  status: [...BACKEND, 'workers', ...WATCH],
  results: BACKEND,
  report: BACKEND,
  logs: BACKEND,
  cancel: BACKEND,
  retry: [...BACKEND, ...WORKERS],
  clean: BACKEND,
  setup: ['region', 'profile', 'stack', 'node-mirror'],
  doctor: ['region', 'profile', 'stack', 'max-instances', 'spot', 'gurobi-product-code'],
  prices: ['region', 'profile'],
  resume: [...BACKEND, 'max-cost', ...WORKERS],
} as const satisfies Record<string, readonly SettingFlag[]>;

/** The parsed setting flags, with the global --verbose. */
export type SettingArgs = ArgumentsCamelCase<InferredOptionTypes<typeof SETTING_FLAGS> & { verbose: boolean | undefined }>;

/** The command's settings flags, under their own heading in its --help. */
export function withSettings<T>(y: Argv<T>, names: readonly SettingFlag[]): Argv<T & InferredOptionTypes<typeof SETTING_FLAGS>> {
  const picked = Object.fromEntries(names.map((n) => [n, SETTING_FLAGS[n]])) as typeof SETTING_FLAGS;
  // Empty groups first fix the order of the headings: positionals, the command's own options, settings.
  const grouped = y.group([], 'Positionals:').group([], 'Options:').options(picked).group([...names], 'Settings (also from GQ_* variables or the config file):');
  return grouped as unknown as Argv<T & InferredOptionTypes<typeof SETTING_FLAGS>>;
}

export function settingsFrom(a: SettingArgs): Record<string, unknown> {
  return {
    backend: a.backend,
    workers: a.workers,
    slots: a.slots,
    retries: a.retries,
    timeout: a.timeout,
    idle: a.idle,
    visibility: a.visibility,
    unreachableTimeout: a['unreachable-timeout'],
    installTimeout: a['install-timeout'],
    installRetries: a['install-retries'],
    maxInstances: a['max-instances'],
    region: a.region,
    profile: a.profile,
    stack: a.stack,
    spot: a.spot,
    spotAlternatives: a['spot-alternatives'],
    spotInterruptions: a['spot-interruptions'],
    gurobiProductCode: a['gurobi-product-code'],
    launchFailures: a['launch-failures'],
    bootTimeout: a['boot-timeout'],
    bootFailures: a['boot-failures'],
    taskAwsAccess: a['task-aws-access'],
    nodeMirror: a['node-mirror'],
    maxCost: a['max-cost'],
  };
}
