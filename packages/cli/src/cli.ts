/**
 * gq: the command line. This file only wires yargs to the command modules, maps flags to the
 * configuration, and exits in one place. A UserError prints its message and hint (exit 1);
 * anything else is a bug and prints its stack (exit 70).
 */
import yargs, { type ArgumentsCamelCase, type Argv, type InferredOptionTypes } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createLogger, loadConfig, redactText, registerSecret, UserError, type Config } from '@gq/common';
import { dataHome, JOB_NAME_RULES, JobNotFoundError, jobNameProblems } from '@gq/common';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stdio, type CommandContext } from './context.js';
import { accessDenied } from './access-denied.js';
import { isCredentialError } from './credential-errors.js';
import { runCancel, runClean, runLogs, runResults, runRetry, runStatus, runSubmit } from './commands/index.js';

/** Flags that are settings (same names as the config keys, kebab-case on the command line). */
const SETTING_FLAGS = {
  backend: { choices: ['local', 'aws'] as const, describe: 'Where to run: local (this machine) or aws (env GQ_BACKEND)' },
  workers: { type: 'number', describe: 'Local backend: worker processes (default: number of CPUs)' },
  retries: { type: 'number', describe: 'Extra attempts for a failed task (default 2)' },
  timeout: { type: 'string', describe: 'Per-task timeout, e.g. 90s, 30m, 2h (default: none)' },
  idle: { type: 'string', describe: 'A worker leaves after the queue is empty this long' },
  visibility: { type: 'string', describe: 'Task lease / message visibility, renewed while running (default 5m)' },
  'unreachable-timeout': { type: 'string', describe: 'A worker that cannot reach AWS this long leaves (default 30m)' },
  'install-timeout': { type: 'string', describe: 'Timeout of one install attempt (default 30m)' },
  'install-retries': { type: 'number', describe: 'Extra install attempts (default 2)' },
  'max-instances': { type: 'number', describe: 'AWS: instances per instance type at most (default 20)' },
  region: { type: 'string', describe: 'AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile\'s region)' },
  profile: { type: 'string', describe: 'AWS: profile in ~/.aws/config (default: AWS_PROFILE, else default)' },
  stack: { type: 'string', describe: 'AWS: name of the gq CloudFormation stack (default gq)' },
  spot: { type: 'boolean', describe: 'AWS: use Spot instances' },
  'gurobi-product-code': { type: 'string', describe: 'AWS: Marketplace product code of the Gurobi image (ami "gurobi")' },
  'launch-failures': { type: 'number', describe: 'AWS: --wait gives up after this many failed launches of a group (default 3)' },
  'boot-timeout': { type: 'string', describe: 'AWS: an instance silent this long after launch failed its boot (default 15m)' },
  'boot-failures': { type: 'number', describe: "AWS: after this many failed boots a type's group is set to 0 (default 3)" },
  'task-aws-access': { type: 'boolean', describe: 'AWS: let tasks use the instance role (default: tasks get no AWS credentials)' },
  'node-mirror': { type: 'string', describe: 'gq setup: where to download the instances\' Node.js build (default https://nodejs.org/dist)' },
} as const;

/** The parsed setting flags, with the global --verbose. */
type SettingArgs = ArgumentsCamelCase<InferredOptionTypes<typeof SETTING_FLAGS> & { verbose: boolean | undefined }>;

function settingsFrom(a: SettingArgs): Record<string, unknown> {
  return {
    backend: a.backend,
    workers: a.workers,
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
    gurobiProductCode: a['gurobi-product-code'],
    launchFailures: a['launch-failures'],
    bootTimeout: a['boot-timeout'],
    bootFailures: a['boot-failures'],
    taskAwsAccess: a['task-aws-access'],
    nodeMirror: a['node-mirror'],
  };
}

/** The configuration of the command being run, for explaining an AWS credentials error. */
let lastConfig: Config | undefined;

/**
 * AWS secrets in the environment are registered with the logger's redaction, so that no log
 * line, message or stack trace of gq can show them. Only values that look like real secrets
 * (16 characters or more) are taken: a short dummy such as moto's "testing" would blank out
 * that word everywhere.
 */
function registerEnvSecrets(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN']) {
    const v = env[name];
    if (v && v.length >= 16) registerSecret(v);
  }
}

function context(a: SettingArgs): CommandContext {
  registerEnvSecrets();
  const log = createLogger({ level: a.verbose ? 'debug' : 'warn' });
  const config = loadConfig(settingsFrom(a));
  lastConfig = config;
  log.debug({ config, argv: process.argv.slice(2) }, 'configuration');
  return { config, log, io: stdio };
}

/**
 * The NAME of status/results/logs/cancel/retry/clean. A string that breaks the job-name rules
 * (e.g. "../x") names no job: say so before anything is opened, and never build a path from it.
 */
function jobArg(s: string, ctx: CommandContext): string {
  const problems = jobNameProblems(s);
  if (problems.length) {
    throw new UserError(`No job named ${JSON.stringify(s)}: ${problems[0]}, so it cannot be a job name.`, {
      hint: 'Run `gq status` to list the jobs this backend knows.',
    });
  }
  // Local backend with no state yet: no job at all. Say so without creating gq.db.
  if (ctx.config.backend === 'local' && !existsSync(join(dataHome(ctx.config), 'gq.db'))) throw new JobNotFoundError(s);
  return s;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const run =
    <A extends SettingArgs>(h: (ctx: CommandContext, a: A) => Promise<number>) =>
    async (a: A) => {
      code = await h(context(a), a);
    };
  const settings = <T>(y: Argv<T>) => y.options(SETTING_FLAGS);

  await yargs(argv)
    .scriptName('gq')
    .strict(true)
    .usage('$0 <command> [options]\n\nRun a CSV of shell commands on this machine or on a self-scaling EC2 fleet.')
    .option('verbose', { type: 'boolean', global: true, describe: 'Debug logs on stderr' })
    .command(
      'submit <jobfile>',
      'Validate a job file, upload the code and start the job',
      (y) =>
        settings(y)
          .positional('jobfile', { type: 'string', demandOption: true, describe: 'CSV with header instance_type,command' })
          .option('name', { type: 'string', describe: `Job name (${JOB_NAME_RULES}); default: from the file name` })
          .option('code', { type: 'string', describe: 'Code folder copied for every task (default: .)' })
          .option('install', { type: 'string', describe: 'Install script run once per worker before its first task' })
          .option('results', { type: 'string', describe: 'Results CSV written by each task, relative to the code folder (default results.csv)' })
          .option('input', { type: 'string', array: true, describe: 'Extra folder LOCAL=REMOTE placed in the code folder (repeatable)' })
          .option('output', { type: 'string', array: true, describe: 'Extra output file or folder to keep, relative to the code folder (repeatable)' })
          .option('license', { type: 'string', describe: 'Gurobi licence file, stored encrypted, given to tasks as GRB_LICENSE_FILE' })
          .option('wait', { type: 'boolean', describe: 'Follow the job to its end; exit 1 if a task failed' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .example('$0 submit config/jobdetails.csv --code config/example --install config/example/INSTALL.sh --wait', 'Run the example job here'),
      run((ctx, a) =>
        runSubmit(ctx, {
          jobfile: a.jobfile,
          name: a.name,
          code: a.code,
          install: a.install,
          results: a.results,
          input: a.input,
          output: a.output,
          license: a.license,
          wait: a.wait,
          json: a.json,
        }),
      ),
    )
    .command(
      'status [name]',
      'All jobs, or one job in detail',
      (y) =>
        settings(y)
          .positional('name', { type: 'string' })
          .option('json', { type: 'boolean' })
          .option('watch', { type: 'boolean', describe: 'Refresh every 2 s until the job ends' })
          .option('tasks', { type: 'boolean', describe: 'Include every task (reads them all)' }),
      run((ctx, a) => runStatus(ctx, { name: a.name === undefined ? undefined : jobArg(a.name, ctx), json: !!a.json, watch: !!a.watch, tasks: !!a.tasks })),
    )
    .command(
      'results <name>',
      'Download results, outputs and logs; write the merged results.csv and tasks.csv',
      (y) =>
        settings(y)
          .positional('name', { type: 'string', demandOption: true })
          .option('out', { type: 'string', describe: 'Folder (default results/<name>)' })
          .option('json', { type: 'boolean' })
          .option('with-provenance', { type: 'boolean', describe: "Add gq's gq_* columns (state, instance, times, ...) to results.csv" })
          .option('failed', { type: 'boolean', describe: 'Only the failed tasks: failed-tasks.csv, their logs, and failed-jobs.csv to submit again' }),
      run((ctx, a) => runResults(ctx, { name: jobArg(a.name, ctx), out: a.out, json: !!a.json, withProvenance: !!a.withProvenance, failed: !!a.failed })),
    )
    .command(
      'logs <name> [task]',
      "Print a task's output, or a worker's install log",
      (y) => settings(y).positional('name', { type: 'string', demandOption: true }).positional('task', { type: 'number' }).option('instance', { type: 'string', describe: 'Worker id (see gq status)' }),
      run((ctx, a) => runLogs(ctx, { name: jobArg(a.name, ctx), task: a.task, instance: a.instance })),
    )
    .command(
      'cancel <name>',
      'Stop a job: queued tasks never start, running ones are stopped',
      (y) => settings(y).positional('name', { type: 'string', demandOption: true }).option('json', { type: 'boolean' }),
      run((ctx, a) => runCancel(ctx, { name: jobArg(a.name, ctx), json: !!a.json })),
    )
    .command(
      'retry <name>',
      'Run the failed tasks of a job again',
      (y) =>
        settings(y)
          .positional('name', { type: 'string', demandOption: true })
          .option('failed', { type: 'boolean', describe: 'Rerun the FAILED tasks' })
          .option('license', { type: 'string', describe: "Store the job's licence again (it is deleted when the job finishes)" })
          .option('wait', { type: 'boolean' })
          .option('json', { type: 'boolean' }),
      run((ctx, a) => runRetry(ctx, { name: jobArg(a.name, ctx), failed: !!a.failed, license: a.license, wait: !!a.wait, json: !!a.json })),
    )
    .command(
      'clean <name>',
      "Remove a finished job's queues, workers and licence; keep its results",
      (y) => settings(y).positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean' }),
      run((ctx, a) => runClean(ctx, { name: jobArg(a.name, ctx), force: !!a.force })),
    )
    .command(
      'setup',
      'AWS: create or update the shared resources (CloudFormation stack)',
      (y) =>
        settings(y)
          .option('vpc-id', { type: 'string', describe: 'VPC for the security group (default: the default VPC)' })
          .option('egress', { type: 'string', describe: 'Outbound traffic of the agents: https-only, http-and-https (default) or all' })
          .option('subnets', { type: 'string', describe: 'Comma-separated subnets for the agents (default: every subnet of the VPC)' })
          .option('public-ipv4', { type: 'string', describe: 'subnet-default, or none for private subnets (no public IPv4 address)' })
          .option('gateway-endpoints', { type: 'string', describe: 'Comma-separated route tables that get S3 and DynamoDB gateway endpoints' }),
      run(async (ctx, a) => {
        const { runSetup } = await import('./commands/setup.js');
        // A flag given twice arrives as an array: not a list of ids.
        const ids = (v: string | undefined) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
        return runSetup(ctx, {
          stack: ctx.config.stack,
          region: await requireRegion(ctx),
          vpcId: a['vpc-id'],
          egress: a.egress,
          subnetIds: ids(a.subnets),
          publicIpv4: a['public-ipv4'],
          gatewayEndpointRouteTables: ids(a['gateway-endpoints']),
          nodeMirror: ctx.config.nodeMirror,
        });
      }),
    )
    .command(
      'doctor [jobfile]',
      'AWS: check region, credentials, stack, network, AMIs, offerings and quotas before spending money, and say what to fix',
      (y) =>
        settings(y)
          .positional('jobfile', { type: 'string', describe: 'Job file whose instance types to check' })
          .option('job-file', { type: 'string', describe: 'Job file whose instance types to check (same as the positional)' })
          .option('instance-type', { type: 'string', describe: 'Instance type to check without a job file (default m5.large)' }),
      run(async (ctx, a) => {
        const { runDoctor } = await import('./commands/doctor.js');
        const jobFile = a.jobfile ?? a['job-file'];
        if (a.jobfile !== undefined && a['job-file'] !== undefined && a.jobfile !== a['job-file']) {
          throw new UserError('Two job files given.', { hint: 'Give the job file once: `gq doctor jobdetails.csv` or `gq doctor --job-file jobdetails.csv`.' });
        }
        if (jobFile !== undefined && a['instance-type'] !== undefined) {
          throw new UserError('Give a job file or --instance-type, not both.', { hint: 'With a job file, gq doctor checks every instance type in it.' });
        }
        return runDoctor(ctx, { stack: ctx.config.stack, jobFile, instanceType: a['instance-type'] });
      }),
    )
    .demandCommand(1, 'Name a command.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(gqVersion())
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserError(msg, { hint: 'Run gq --help, or gq <command> --help.' });
    })
    .parseAsync();
  return code;
}

/** This gq's version (yargs looks for package.json next to the entry script and finds none). */
function gqVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function requireRegion(ctx: CommandContext): Promise<string> {
  const { resolveRegion } = await import('./aws/region.js');
  return resolveRegion(ctx.config);
}

export function printError(e: unknown): number {
  if (e instanceof UserError) {
    process.stderr.write(redactText(`gq: ${e.message}\n`));
    for (const d of e.details) process.stderr.write(redactText(`  ${d}\n`));
    if (e.hint) process.stderr.write(redactText(`hint: ${e.hint}\n`));
    return 1;
  }
  process.stderr.write(redactText(`gq: internal error (a bug; please report it)\n${(e as Error)?.stack ?? String(e)}\n`));
  return 70;
}

/** An AWS credentials error, wherever it was raised, becomes a UserError that says why and how to fix it. */
async function explain(e: unknown): Promise<unknown> {
  // Cheap test first: the AWS SDK is loaded only for what may be a credentials error.
  const cause = e instanceof UserError ? (e as { cause?: unknown }).cause : e;
  const denied = accessDenied(e);
  if (denied) return denied;
  if (!cause || !isCredentialError(cause)) return e;
  try {
    const { explainAwsError } = await import('./aws/credentials.js');
    return await explainAwsError(e, { region: lastConfig?.region, profile: lastConfig?.profile });
  } catch {
    return e;
  }
}

main(hideBin(process.argv)).then(
  (code) => process.exit(code),
  async (e: unknown) => process.exit(printError(await explain(e))),
);
