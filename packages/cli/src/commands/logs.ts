/** gq logs NAME TASK [--follow] | --instance ID: print a task's output log (or follow it while it runs) or a worker's install log. */
import { JobNotFoundError, keys, UserError, type TaskRecord } from '@gq/common';
import { plainRelativeKey } from '@gq/common/safe-path';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { describeEnd, followTask, localLiveSource, storeLiveSource } from '../log-follow.js';

export interface LogsArgs {
  name: string;
  task?: number;
  instance?: string;
  /** Stream the task's output while it runs; end when the task ends (exit code 0 only if it succeeded). */
  follow?: boolean;
  /** How often --follow looks (ms). */
  pollMs?: number;
}

export async function runLogs(ctx: CommandContext, a: LogsArgs): Promise<number> {
  if (a.follow && (a.task === undefined || a.instance)) {
    throw new UserError('--follow follows a task: give its number, without --instance.', { hint: `Example: gq logs ${a.name} 3 --follow` });
  }
  if (a.task === undefined && !a.instance) {
    throw new UserError('Say which log: a task number, or --instance ID.', { hint: `Example: gq logs ${a.name} 3` });
  }
  const backend = await openCliBackend(ctx.config);
  try {
    const job = await backend.status.getJob(a.name);
    if (!job) throw new JobNotFoundError(a.name);
    if (a.instance) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(a.instance)) {
        throw new UserError(`${JSON.stringify(a.instance)} is not a worker id.`, { hint: `gq status ${a.name} lists the workers (for example i-0abc123 on EC2).` });
      }
      const prefix = keys.instanceLog(a.name, a.instance, '');
      const found = await backend.artifacts.list(prefix);
      if (!found.length) throw new UserError(`No logs stored for worker ${a.instance} of job ${a.name}.`, { hint: `gq status ${a.name} lists the workers.` });
      // One unreadable log (gone meanwhile, damaged in the store) does not hide the others.
      const failed: string[] = [];
      for (const k of found) {
        const name = k.slice(prefix.length);
        let text: string;
        try {
          text = (await backend.artifacts.getBytes(k)).toString('utf8');
        } catch (e) {
          failed.push(`${name}: ${(e as Error)?.message ?? String(e)}`);
          continue;
        }
        ctx.io.out(`===== ${name} =====`);
        ctx.io.out(text);
      }
      if (failed.length) {
        throw new UserError(`Could not read ${failed.length} of ${found.length} logs of worker ${a.instance}.`, {
          details: failed,
          hint: 'Run the command again; if it fails the same way, the stored object is damaged (see the reason above).',
        });
      }
      return 0;
    }
    const task = await backend.status.getTask(a.name, a.task!);
    if (!task) throw new UserError(`Job ${a.name} has no task ${a.task}.`, { hint: `Tasks are numbered 1 to ${job.total}.` });
    if (a.follow) {
      const source = ctx.config.backend === 'local' ? localLiveSource(ctx.config, a.name) : storeLiveSource(backend, a.name);
      const io = {
        out: (b: Buffer) => void process.stdout.write(b),
        note: (l: string) => ctx.io.err(l),
        finalLog: async (t: TaskRecord) => (t.logKey ? backend.artifacts.getBytes(ownLogKey(a.name, t)) : undefined),
      };
      const end = await followTask(backend, a.name, task.task, source, io, a.pollMs ?? (ctx.config.backend === 'local' ? 300 : 2000));
      const attempts = `after ${end.task.attempts} attempt(s)`;
      if (end.state === 'SUCCEEDED') ctx.io.err(`[gq: task ${task.task} succeeded ${attempts}]`);
      else ctx.io.err(`[gq: task ${task.task} ${end.state === 'FAILED' ? `failed${describeEnd(end.task)} ${attempts}` : 'was cancelled'}]`);
      return end.state === 'SUCCEEDED' ? 0 : 1;
    }
    if (!task.logKey) {
      ctx.io.err(task.state === 'QUEUED' || task.state === 'RUNNING' ? `Task ${a.task} has no log yet (${task.state}).` : `Task ${a.task} (${task.state}) printed nothing.`);
      return 0;
    }
    process.stdout.write(await backend.artifacts.getBytes(ownLogKey(a.name, task)));
    return 0;
  } finally {
    await backend.close();
  }
}

/**
 * The task's log key, when it is the task's own: a record naming another key (the licence,
 * another job's files) was not written by gq and is not printed.
 */
function ownLogKey(job: string, task: TaskRecord): string {
  const own = keys.taskPrefix(job, task.task);
  const rel = task.logKey?.startsWith(own) ? task.logKey.slice(own.length) : '';
  if (!plainRelativeKey(rel)) {
    throw new UserError(`Refusing to print the log of task ${task.task}: its record names the key ${JSON.stringify(task.logKey)}, which is not one of the task's own files (under ${own}).`, {
      hint: 'gq never records such a key itself: the status record was changed by something else.',
    });
  }
  return task.logKey!;
}
