/**
 * gq-agent: the worker that runs a job's tasks, on this machine (local backend) or on an EC2
 * instance (started by UserData). `gq-agent tag KEY VALUE` is for the task's own command.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError } from '@gq/common';
import { runWorker } from './run.js';
import { runTag } from './tag.js';

async function main(argv: string[]): Promise<number> {
  let code = 0;
  await yargs(argv)
    .scriptName('gq-agent')
    .strict(true)
    .usage('$0 <command>\n\nThe gq worker. You normally never start it yourself: `gq submit` does.')
    .command(
      'run',
      'Run tasks of one job until its queue stays empty',
      (y) =>
        y
          .option('backend', { choices: ['local', 'aws'] as const, demandOption: true, describe: 'Where the job lives' })
          .option('job', { type: 'string', demandOption: true, describe: 'Job name' })
          .option('instance-type', { type: 'string', describe: 'Queue to serve (default: from instance metadata)' })
          .option('instance', { type: 'string', describe: 'Worker id (default: EC2 instance id, or a local id)' })
          .option('home', { type: 'string', describe: 'Local backend data folder' })
          .option('region', { type: 'string', describe: 'AWS region (default: from instance metadata)' })
          .option('bucket', { type: 'string', describe: 'AWS: artifact bucket' })
          .option('table', { type: 'string', describe: 'AWS: status table' })
          .option('workdir', { type: 'string', describe: 'Folder for code, task copies and logs' })
          .option('task-user', { type: 'string', describe: 'Run tasks as this unprivileged user (EC2: gq-task); default: as the agent' })
          .option('task-aws-access', { type: 'boolean', default: false, describe: 'With --task-user: tasks may use the instance role' })
          .option('on-demand', { type: 'boolean', default: false, describe: "Serve the type's on-demand queue (a Spot job's fallback group)" })
          .option('root-volume-gb', { type: 'number', describe: "GB of the instance's root EBS volume (EC2), for the cost figures" }),
      async (a) => {
        code = await runWorker({
          backend: a.backend,
          job: a.job,
          instanceType: a['instance-type'],
          instance: a.instance,
          home: a.home,
          region: a.region,
          bucket: a.bucket,
          table: a.table,
          workdir: a.workdir,
          taskUser: a['task-user'],
          taskAwsAccess: a['task-aws-access'],
          onDemand: a['on-demand'],
          rootVolumeGb: a['root-volume-gb'],
        });
      },
    )
    .command(
      'tag <key> <value>',
      'Record a progress tag on the running task (e.g. gq-agent tag percent_complete 40)',
      (y) =>
        y
          .positional('key', { type: 'string', demandOption: true })
          .positional('value', { type: 'string', demandOption: true }),
      async (a) => {
        await runTag(String(a.key), String(a.value));
      },
    )
    .demandCommand(1, 'Name a command: run or tag.')
    .help()
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserError(msg, { hint: 'Run gq-agent --help.' });
    })
    .parseAsync();
  return code;
}

main(hideBin(process.argv)).then(
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
