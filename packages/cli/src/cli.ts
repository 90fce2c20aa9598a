/**
 * gq: the command line. This file only wires yargs to the command modules, maps flags to the
 * configuration, and exits in one place. A UserError prints its message and hint (exit 1);
 * anything else is a bug and prints its stack (exit 70).
 */
import yargs, { type Argv } from 'yargs';
import { COMMAND_SETTINGS, SETTING_FLAGS, settingsFrom, withSettings, type SettingArgs } from './settings-flags.js';
import { hideBin } from 'yargs/helpers';
import { createLogger, loadConfig, redactText, registerSecret, UserError, type Config } from '@gq/common';
import { dataHome, JOB_NAME_RULES, JobNotFoundError, jobNameProblems } from '@gq/common';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stdio, type CommandContext } from './context.js';
import { exitWhenWritten, watchStdio } from './stdio-flush.js';
import { accessDenied } from './access-denied.js';
import { unreachable } from './unreachable.js';
import { isCredentialError } from './credential-errors.js';
import { oldToolAnswer, submitFromOldFlags } from './old-tool.js';
import { allowProgress } from './progress.js';
import { commandSpec, commandsFromHelp, completionScript, jobNames, optionsFromHelp, rememberJob } from './completion.js';

/**
 * Each command's module is loaded when that command runs (\`gq status\` never loads submit's CSV
 * reader, tar or progress bars): every gq command pays only for its own start.
 */
type Cmd<F extends (...a: never[]) => unknown> = (...a: Parameters<F>) => Promise<Awaited<ReturnType<F>>>;
type Cmds = typeof import('./commands/index.js');
const runSubmit: Cmd<Cmds['runSubmit']> = async (...a) => (await import('./commands/submit.js')).runSubmit(...a);
const runStatus: Cmd<Cmds['runStatus']> = async (...a) => (await import('./commands/status.js')).runStatus(...a);
const runResults: Cmd<Cmds['runResults']> = async (...a) => (await import('./commands/results.js')).runResults(...a);
const runLogs: Cmd<Cmds['runLogs']> = async (...a) => (await import('./commands/logs.js')).runLogs(...a);
const runCancel: Cmd<Cmds['runCancel']> = async (...a) => (await import('./commands/cancel.js')).runCancel(...a);
const runRetry: Cmd<Cmds['runRetry']> = async (...a) => (await import('./commands/retry.js')).runRetry(...a);
const runClean: Cmd<Cmds['runClean']> = async (...a) => (await import('./commands/clean.js')).runClean(...a);
const runResume: Cmd<Cmds['runResume']> = async (...a) => (await import('./commands/resume.js')).runResume(...a);
const runReport: Cmd<Cmds['runReport']> = async (...a) => (await import('./commands/report.js')).runReport(...a);

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
  const answer = oldToolAnswer(argv);
  if (answer) throw answer;
  let code = 0;
  await cli(argv, (c) => (code = c)).parseAsync();
  return code;
}

/** The help text of `args` (e.g. ['logs', '--help']), unwrapped, without printing it. */
async function helpOf(args: string[]): Promise<string> {
  let text = '';
  await cli(args, () => undefined)
    .exitProcess(false)
    .wrap(null)
    .parseAsync(args, {}, (_err, _argv, output) => {
      text = output;
    });
  return text;
}

/** The whole command line; `setCode` receives the exit code of the command that ran. */
function cli(argv: string[], setCode: (code: number) => void): Argv<unknown> {
  // A job named on the command line (NAME, submit's --name) of a command that worked on AWS is
  // kept for shell completion (completion.ts: no AWS call on TAB). A derived submit name is
  // kept once another command names it.
  const run =
    <A extends SettingArgs>(h: (ctx: CommandContext, a: A) => Promise<number>) =>
    async (a: A) => {
      const ctx = context(a);
      allowProgress(!(a as { json?: unknown }).json);
      setCode(await h(ctx, a));
      const job = (a as { name?: unknown }).name;
      if (typeof job === 'string') rememberJob(ctx.config, job);
    };
  const settings = <T>(y: Argv<T>, command: keyof typeof COMMAND_SETTINGS) => withSettings(y, COMMAND_SETTINGS[command]);

  return withoutHelpCache(yargs(argv)
    .scriptName('gq')
    .strict(true)
    .usage('$0 <command> [options]\n\nRun a CSV of shell commands on this machine or on a self-scaling EC2 fleet.')
    .option('verbose', { alias: 'v', type: 'boolean', global: true, describe: 'Debug logs on stderr' })
    .command(
      'submit <jobfile>',
      'Validate a job file, upload the code and start the job',
      (y) =>
        settings(y, 'submit')
          .positional('jobfile', { type: 'string', demandOption: true, describe: 'CSV with header instance_type,command' })
          .option('name', { type: 'string', describe: `Job name (${JOB_NAME_RULES}); default: from the file name` })
          .option('code', { type: 'string', describe: 'Code folder copied for every task (default: .)' })
          .option('install', { type: 'string', describe: 'Install script run once per worker before its first task' })
          .option('results', { type: 'string', describe: 'Results CSV written by each task, relative to the code folder (default results.csv)' })
          .option('input', { type: 'string', array: true, describe: 'Extra folder LOCAL=REMOTE placed in the code folder (repeatable)' })
          .option('output', { type: 'string', array: true, describe: 'Extra output file or folder to keep, relative to the code folder (repeatable)' })
          .option('license', { type: 'string', describe: 'Gurobi licence file, stored encrypted, given to tasks as GRB_LICENSE_FILE' })
          .option('wait', { type: 'boolean', describe: 'Follow the job to its end; exit 1 if a task failed' })
          .option('report', { type: 'string', describe: 'Write the HTML report (gq report) when the job ends; implies --wait (default file results/<name>/report.html)' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .option('dry-run', { type: 'boolean', describe: 'Check the job and print its plan and a cost estimate; create nothing' })
          .option('estimate-runtime', { type: 'string', describe: 'Run time of one task for the cost estimate, e.g. 30m' })
          .option('like', { type: 'string', describe: 'A previous job whose run times the cost estimate uses' })
          .example('$0 submit config/jobdetails.csv --code config/example --install config/example/INSTALL.sh --wait', 'Run the example job here')
          // The older Python tool's spellings, accepted but not shown (old-tool.ts).
          .option('create', { alias: 'c', type: 'boolean', hidden: true })
          .option('dispatch', { alias: 'd', type: 'boolean', hidden: true })
          .option('extra_input_code_path', { alias: 'i', type: 'string', array: true, hidden: true })
          .option('extra_output_file', { alias: 'o', type: 'string', array: true, hidden: true })
          .option('tag_offset', { type: 'number', hidden: true }),
      run((ctx, a) => {
        const old = submitFromOldFlags(a);
        for (const note of old.notes) ctx.io.err(note);
        return runSubmit(ctx, {
          jobfile: a.jobfile,
          name: a.name,
          code: a.code,
          install: a.install,
          results: a.results,
          input: old.input,
          output: old.output,
          license: a.license,
          wait: a.wait || a.report !== undefined,
          report: a.report,
          json: a.json,
          dryRun: a['dry-run'],
          estimateRuntime: a['estimate-runtime'],
          like: a.like,
        });
      }),
    )
    .command(
      'status [name]',
      'All jobs, or one job in detail',
      (y) =>
        settings(y, 'status')
          .positional('name', { type: 'string', describe: 'Job name (default: list every job)' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .option('watch', { type: 'boolean', describe: 'Refresh every 2 s until the job ends' })
          .option('tasks', { type: 'boolean', describe: 'Include every task (reads them all)' })
          .example('$0 status example-job --watch', 'Follow one job until it ends'),
      run((ctx, a) => runStatus(ctx, { name: a.name === undefined ? undefined : jobArg(a.name, ctx), json: !!a.json, watch: !!a.watch, tasks: !!a.tasks })),
    )
    .command(
      'results <name>',
      'Download results, outputs and logs; write the merged results.csv and tasks.csv',
      (y) =>
        settings(y, 'results')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('out', { type: 'string', describe: 'Folder (default results/<name>)' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .option('with-provenance', { type: 'boolean', describe: "Add gq's gq_* columns (state, instance, times, ...) to results.csv" })
          .option('failed', { type: 'boolean', describe: 'Only the failed tasks: failed-tasks.csv, their logs, and failed-jobs.csv to submit again' })
          .example('$0 results example-job --out results/example', 'Download and merge into results/example/results.csv'),
      run((ctx, a) => runResults(ctx, { name: jobArg(a.name, ctx), out: a.out, json: !!a.json, withProvenance: !!a.withProvenance, failed: !!a.failed })),
    )
    .command(
      'report <name>',
      'Write an HTML report of a job: timeline of attempts, run times, ETA, failures, cost',
      (y) =>
        settings(y, 'report')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('out', { type: 'string', describe: 'HTML file (default results/<name>/report.html)' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .example('$0 report example-job --out example.html', 'Write the report of example-job to example.html'),
      run((ctx, a) => runReport(ctx, { name: jobArg(a.name, ctx), out: a.out, json: !!a.json })),
    )
    .command(
      'logs <name> [task]',
      "Print a task's output, or a worker's install log",
      (y) =>
        settings(y, 'logs')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .positional('task', { type: 'number', describe: 'Task number (from 1, in job-file order)' })
          .option('instance', { type: 'string', describe: 'Worker id (see gq status)' })
          .option('follow', { alias: 'f', type: 'boolean', describe: "Stream the task's output while it runs; end when the task ends (exit 0 only if it succeeded)" })
          .example('$0 logs example-job 3', "Task 3's output")
          .example('$0 logs example-job 3 --follow', "Task 3's output as it runs, until it ends")
          .example('$0 logs example-job --instance i-0abc123', "A worker's install log"),
      run((ctx, a) => runLogs(ctx, { name: jobArg(a.name, ctx), task: a.task, instance: a.instance, follow: !!a.follow })),
    )
    .command(
      'cancel <name>',
      'Stop a job: queued tasks never start, running ones are stopped',
      (y) =>
        settings(y, 'cancel')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .example('$0 cancel example-job', 'Stop the job and its workers'),
      run((ctx, a) => runCancel(ctx, { name: jobArg(a.name, ctx), json: !!a.json })),
    )
    .command(
      'retry <name>',
      'Run the failed tasks of a job again',
      (y) =>
        settings(y, 'retry')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('failed', { type: 'boolean', describe: 'Rerun the FAILED tasks' })
          .option('license', { type: 'string', describe: "Store the job's licence again (it is deleted when the job finishes)" })
          .option('wait', { type: 'boolean', describe: 'Follow the job to its end; exit 1 if a task failed' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .example('$0 retry example-job --failed --wait', 'Rerun the failed tasks and follow them'),
      run((ctx, a) => runRetry(ctx, { name: jobArg(a.name, ctx), failed: !!a.failed, license: a.license, wait: !!a.wait, json: !!a.json })),
    )
    .command(
      'prices <action>',
      'prices update: refresh the on-demand price table from the AWS Price List API',
      (y) =>
        settings(y, 'prices')
          .positional('action', { choices: ['update'] as const, demandOption: true, describe: 'What to do with the price table' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .example('$0 prices update --region eu-west-1', 'Refresh the on-demand prices of a region'),
      run(async (ctx, a) => {
        // Loaded only for this command: the Pricing client alone is ~75 MB of every gq's memory.
        const { runPricesUpdate } = await import('./commands/prices.js');
        return runPricesUpdate(ctx, { json: !!a.json });
      }),
    )
    .command(
      'resume <name>',
      'Set a new cost cap (--max-cost) for a job stopped at its cap, and go on',
      (y) =>
        settings(y, 'resume')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('wait', { type: 'boolean', describe: 'Follow the job to its end; exit 1 if a task failed' })
          .option('json', { type: 'boolean', describe: 'Machine-readable output' })
          .example('$0 resume sweep-2026-11 --max-cost 50 --wait', 'Raise the cap to $50 and go on'),
      run((ctx, a) => runResume(ctx, { name: jobArg(a.name, ctx), wait: !!a.wait, json: !!a.json })),
    )
    .command(
      'clean <name>',
      "Remove a finished job's queues, workers and licence; keep its results",
      (y) =>
        settings(y, 'clean')
          .positional('name', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('force', { type: 'boolean', describe: 'Also while tasks are queued or running (their workers and queues are removed)' })
          .example('$0 clean example-job', 'Remove what the finished job left; its results stay'),
      run((ctx, a) => runClean(ctx, { name: jobArg(a.name, ctx), force: !!a.force })),
    )
    .command(
      'setup',
      'AWS: create or update the shared resources (CloudFormation stack)',
      (y) =>
        settings(y, 'setup')
          .option('vpc-id', { type: 'string', describe: 'VPC for the security group (default: the default VPC)' })
          .option('egress', { type: 'string', describe: 'Outbound traffic of the agents: https-only, http-and-https (default) or all' })
          .option('subnets', { type: 'string', describe: 'Comma-separated subnets for the agents (default: every subnet of the VPC)' })
          .option('public-ipv4', { type: 'string', describe: 'subnet-default, or none for private subnets (no public IPv4 address)' })
          .option('gateway-endpoints', { type: 'string', describe: 'Comma-separated route tables that get S3 and DynamoDB gateway endpoints' })
          .example('$0 setup --region eu-west-1', 'Create the stack in eu-west-1'),
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
        settings(y, 'doctor')
          .positional('jobfile', { type: 'string', describe: 'Job file whose instance types to check' })
          .option('job-file', { type: 'string', describe: 'Job file whose instance types to check (same as the positional)' })
          .option('instance-type', { type: 'string', describe: 'Instance type to check without a job file (default m5.large)' })
          .example('$0 doctor config/jobdetails.csv', "Check everything the job's instance types need"),
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
    .command(
      'completion [shell]',
      'Print the shell completion script (commands, options, job names)',
      (y) =>
        withSettings(y, [])
          .positional('shell', { choices: ['bash', 'zsh'] as const, describe: 'Shell (default: from $SHELL)' })
          .option('jobs', { type: 'boolean', hidden: true, describe: "The backend's job names, one a line (what a TAB offers)" })
          .option('backend', { ...SETTING_FLAGS.backend, hidden: true })
          .example('$0 completion zsh', 'Print the zsh script')
          .example(`echo 'eval "$(gq completion bash)"' >> ~/.bashrc`, 'Install for bash')
          .example(`echo 'eval "$(gq completion zsh)"' >> ~/.zshrc`, 'Install for zsh'),
      run(async (ctx, a) => {
        if (a.jobs) {
          for (const name of await jobNames(ctx.config)) ctx.io.out(name);
          return 0;
        }
        const top = await helpOf(['--help']);
        const commands = await Promise.all(commandsFromHelp(top).map(async (c) => commandSpec(c.name, c.positionals, await helpOf([c.name, '--help']))));
        const shell = a.shell ?? (/zsh/.test(process.env.SHELL ?? '') ? 'zsh' : 'bash');
        ctx.io.out(completionScript(shell, commands, optionsFromHelp(top)));
        return 0;
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
    }));
}

/**
 * yargs renders the whole help text of the command being run as the command starts (its usage
 * object's cacheHelpMessage), to print it should the command fail later. gq's `.fail` throws
 * instead and never prints that help, and rendering it (cliui and string-width over every option)
 * took about 0.1 s of the start of every command. `--help` renders its text when asked, as before.
 */
function withoutHelpCache<T>(y: Argv<T>): Argv<T> {
  const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
  return y;
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
  // A UserError that already says what failed is kept as it is.
  const denied = accessDenied(e) ?? unreachable(e);
  if (denied) return denied;
  if (!cause || !isCredentialError(cause)) return e;
  try {
    const { explainAwsError } = await import('./aws/credentials.js');
    return await explainAwsError(e, { region: lastConfig?.region, profile: lastConfig?.profile });
  } catch {
    return e;
  }
}

watchStdio();
main(hideBin(process.argv)).then(
  (code) => exitWhenWritten(code),
  async (e: unknown) => exitWhenWritten(printError(await explain(e))),
);
