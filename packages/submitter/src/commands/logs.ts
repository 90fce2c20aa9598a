/** gq logs NAME TASK | --instance ID: print a task's output log or a worker's install log. */
import { JobNotFoundError, keys, UserError } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';

export interface LogsArgs {
  name: string;
  task?: number;
  instance?: string;
}

export async function runLogs(ctx: CommandContext, a: LogsArgs): Promise<number> {
  if (a.task === undefined && !a.instance) {
    throw new UserError('Say which log: a task number, or --instance ID.', { hint: `Example: gq logs ${a.name} 3` });
  }
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    if (a.instance) {
      const prefix = keys.instanceLog(a.name, a.instance, '');
      const found = await backend.artifacts.list(prefix);
      if (!found.length) throw new UserError(`No logs stored for worker ${a.instance} of job ${a.name}.`, { hint: `gq status ${a.name} lists the workers.` });
      for (const k of found) {
        ctx.io.out(`===== ${k.slice(prefix.length)} =====`);
        ctx.io.out((await backend.artifacts.getBytes(k)).toString('utf8'));
      }
      return 0;
    }
    const task = await backend.status.getTask(a.name, a.task!);
    if (!task) throw new UserError(`Job ${a.name} has no task ${a.task}.`, { hint: `Tasks are numbered 1 to ${job.total}.` });
    if (!task.logKey) {
      ctx.io.err(task.state === 'QUEUED' || task.state === 'RUNNING' ? `Task ${a.task} has no log yet (${task.state}).` : `Task ${a.task} (${task.state}) printed nothing.`);
      return 0;
    }
    process.stdout.write(await backend.artifacts.getBytes(task.logKey));
    return 0;
  } finally {
    await backend.close();
  }
}
