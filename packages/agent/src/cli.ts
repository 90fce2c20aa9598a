/**
 * gq-agent: the worker that runs a job's tasks, on this machine (local backend) or on an EC2
 * instance (started by UserData). `gq-agent tag KEY VALUE` is for the task's own command.
 *
 * Its arguments are read with node:util's parseArgs (strict: an unknown or malformed option is
 * an error): every worker start and every `gq-agent tag` a task runs is a fresh process, and
 * loading yargs took longer than the rest of a tag's work (about 80 ms of a 0.2 s start).
 */
import { parseArgs } from 'node:util';
import { UserError } from '@gq/common';

interface Opt {
  type: 'string' | 'boolean';
  describe: string;
  required?: boolean;
  choices?: readonly string[];
  number?: boolean;
}

const RUN_OPTIONS: Record<string, Opt> = {
  backend: { type: 'string', required: true, choices: ['local', 'aws'], describe: 'Where the job lives' },
  job: { type: 'string', required: true, describe: 'Job name' },
  'instance-type': { type: 'string', describe: 'Queue to serve (default: from instance metadata)' },
  instance: { type: 'string', describe: 'Worker id (default: EC2 instance id, or a local id)' },
  home: { type: 'string', describe: 'Local backend data folder' },
  region: { type: 'string', describe: 'AWS region (default: from instance metadata)' },
  bucket: { type: 'string', describe: 'AWS: artifact bucket' },
  table: { type: 'string', describe: 'AWS: status table' },
  workdir: { type: 'string', describe: 'Folder for code, task copies and logs' },
  'task-user': { type: 'string', describe: 'Run tasks as this unprivileged user (EC2: gq-task); default: as the agent' },
  'task-aws-access': { type: 'boolean', describe: 'With --task-user: tasks may use the instance role' },
  'on-demand': { type: 'boolean', describe: "Serve the type's on-demand queue (a Spot job's fallback group)" },
  'root-volume-gb': { type: 'string', number: true, describe: "GB of the instance's root EBS volume (EC2), for the cost figures" },
};

const USAGE = `gq-agent <command>

The gq worker. You normally never start it yourself: \`gq submit\` does.

Commands:
  gq-agent run                Run tasks of one job until its queue stays empty
  gq-agent tag <key> <value>  Record a progress tag on the running task (e.g. gq-agent tag percent_complete 40)

Options:
  --help  Show help
`;

function runUsage(): string {
  const rows = Object.entries(RUN_OPTIONS).map(([name, o]) => {
    const extra = [o.type === 'boolean' ? '[boolean]' : o.number ? '[number]' : '[string]', o.required ? '[required]' : '', o.choices ? `[choices: ${o.choices.map((c) => `"${c}"`).join(', ')}]` : '']
      .filter(Boolean)
      .join(' ');
    return `  --${name.padEnd(17)} ${o.describe}  ${extra}`;
  });
  return `gq-agent run\n\nRun tasks of one job until its queue stays empty\n\nOptions:\n  --help              Show help\n${rows.join('\n')}\n`;
}

const HINT = { hint: 'Run gq-agent --help.' };

/** parseArgs's own errors (unknown option, missing value) as a UserError. */
function parsed<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS')) throw new UserError(e.message, HINT);
    throw e;
  }
}

async function run(args: string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: Record<string, { type: 'string' | 'boolean' }> }>({
      args,
      strict: true,
      allowPositionals: false,
      options: { help: { type: 'boolean' }, ...Object.fromEntries(Object.entries(RUN_OPTIONS).map(([k, o]) => [k, { type: o.type }])) },
    }),
  );
  if ((values as { help?: boolean }).help) {
    process.stdout.write(runUsage());
    return 0;
  }
  const v = values as Record<string, string | boolean | undefined>;
  const str = (k: string): string | undefined => v[k] as string | undefined;
  for (const [k, o] of Object.entries(RUN_OPTIONS)) {
    if (o.required && str(k) === undefined) throw new UserError(`Missing required argument: ${k}`, HINT);
    if (o.choices && str(k) !== undefined && !o.choices.includes(str(k)!)) {
      throw new UserError(`Invalid values:\n  Argument: ${k}, Given: "${str(k)}", Choices: ${o.choices.map((c) => `"${c}"`).join(', ')}`, HINT);
    }
  }
  const volume = str('root-volume-gb');
  if (volume !== undefined && !Number.isFinite(Number(volume))) throw new UserError(`--root-volume-gb must be a number, got "${volume}".`, HINT);
  const { runWorker } = await import('./run.js');
  return runWorker({
    backend: str('backend') as 'local' | 'aws',
    job: str('job')!,
    instanceType: str('instance-type'),
    instance: str('instance'),
    home: str('home'),
    region: str('region'),
    bucket: str('bucket'),
    table: str('table'),
    workdir: str('workdir'),
    taskUser: str('task-user'),
    taskAwsAccess: v['task-aws-access'] === true,
    onDemand: v['on-demand'] === true,
    rootVolumeGb: volume === undefined ? undefined : Number(volume),
  });
}

async function tag(args: string[]): Promise<number> {
  // Every argument is the key or the value (a value may start with '-': gq-agent tag delta -5).
  if (args[0] === '--help') {
    process.stdout.write('gq-agent tag <key> <value>\n\nRecord a progress tag on the running task (e.g. gq-agent tag percent_complete 40)\n');
    return 0;
  }
  const positionals = args[0] === '--' ? args.slice(1) : args;
  if (positionals.length < 2) throw new UserError('Not enough arguments: gq-agent tag needs a key and a value.', { hint: 'e.g. gq-agent tag percent_complete 40' });
  if (positionals.length > 2) throw new UserError(`Unknown arguments: ${positionals.slice(2).join(', ')}`, { hint: 'Quote a value with spaces: gq-agent tag status "phase 2"' });
  const { runTag } = await import('./tag.js');
  await runTag(positionals[0]!, positionals[1]!);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'run') return run(rest);
  if (command === 'tag') return tag(rest);
  if (command === undefined || command === '--help' || command === 'help') {
    if (command === undefined) throw new UserError('Name a command: run or tag.', HINT);
    process.stdout.write(USAGE);
    return 0;
  }
  throw new UserError(`Unknown command: ${command}. The commands are run and tag.`, HINT);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UserError) {
      process.stderr.write(`gq-agent: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
      process.exit(1);
    }
    process.stderr.write(`gq-agent: internal error\n${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(70);
  },
);
