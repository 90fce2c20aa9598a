/**
 * One claimed task, start to end: fresh folder → run with heartbeat → upload results, outputs
 * and log → record the outcome → delete or release the message. Uploads come before the status
 * write and the status write before the delete, so a crash at any point leaves the task to run
 * again, never a SUCCEEDED task without its results.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ENV, keys, type JobRecord, type Logger, type TaskOutcome, type TaskRecord } from '@gq/common';
import type { AgentDeps } from './deps.js';
import { startHeartbeat, type HeartbeatStop } from './heartbeat.js';
import { runCommand, type RunResult } from './process.js';
import { uploadOutputs } from './uploads.js';
import { freshTaskDir, removeTaskDir } from './workspace.js';
import { crashPoint } from './faults.js';

export interface TaskRun {
  /** Stop the task now; `release` gives it back unrun (not charged as an attempt). */
  stop(reason: 'release' | 'shutdown'): void;
  done: Promise<void>;
}

export function runTask(d: AgentDeps, job: JobRecord, task: TaskRecord, receipt: string): TaskRun {
  const log: Logger = d.log.child({ task: task.task, attempt: task.attempts });
  let stopReason: HeartbeatStop | 'release' | 'shutdown' | undefined;
  let stopProcess: ((why: string) => void) | undefined;
  const stop = (why: NonNullable<typeof stopReason>) => {
    if (stopReason) return;
    stopReason = why;
    stopProcess?.(why);
  };

  const done = (async () => {
    crashPoint('after-claim');
    const dir = freshTaskDir(d.ws, task.task, task.attempts);
    const logFile = join(d.ws.logs, `task-${task.task}-${task.attempts}.log`);
    const hb = startHeartbeat({
      status: d.backend.status,
      queue: d.queue,
      job: job.name,
      task: task.task,
      instance: d.instance,
      receipt,
      leaseSeconds: job.visibilitySeconds,
      log,
      onStop: (r) => stop(r),
    });
    let r: RunResult;
    try {
      const p = runCommand({
        command: task.command,
        cwd: dir,
        env: taskEnv(d, job, task, dir),
        logFile,
        timeoutSeconds: job.timeoutSeconds,
      });
      stopProcess = p.stop;
      if (stopReason) p.stop(stopReason);
      r = await p.result;
    } finally {
      await hb.stop();
    }
    log.debug({ exitCode: r.exitCode, signal: r.signal, ms: r.durationMs }, 'command ended');

    if (stopReason === 'lost') {
      // Another worker owns the task now; record nothing and leave the message alone.
      log.warn('lease lost while running; the task belongs to another worker now');
      removeTaskDir(dir);
      return;
    }
    // A task that printed nothing has no log to keep.
    const logKey = statSync(logFile).size > 0 ? keys.taskLog(job.name, task.task) : undefined;
    if (logKey) await d.backend.artifacts.putFile(logKey, logFile);
    rmSync(logFile, { force: true });

    let outcome: TaskOutcome;
    if (stopReason === 'cancel') outcome = { kind: 'cancelled', logKey };
    else if (stopReason === 'release' || stopReason === 'shutdown')
      outcome = { kind: 'released', reason: stopReason === 'release' ? 'instance interrupted' : 'agent stopped' };
    else if (r.exitCode === 0 && !r.timedOut) {
      const up = await uploadOutputs(d.backend.artifacts, job.name, task.task, dir, job.resultsPath, job.outputs);
      outcome = {
        kind: 'succeeded',
        exitCode: 0,
        logKey,
        resultKey: up.resultKey,
        outputKeys: up.outputKeys,
        error: up.resultKey ? undefined : `exited 0 but did not write its results file ${job.resultsPath}`,
      };
    } else {
      outcome = {
        kind: 'failed',
        exitCode: r.exitCode ?? undefined,
        signal: r.signal ?? undefined,
        error: describeFailure(r),
        stderrTail: r.stderrTail,
        logKey,
        retryable: true,
      };
    }
    removeTaskDir(dir);

    crashPoint('after-upload');
    const cr = await d.backend.status.complete(job.name, task.task, d.instance, outcome);
    if (cr.kind === 'lost') {
      log.warn('lease lost before the outcome was recorded; leaving the message to its new owner');
      return;
    }
    log.info({ state: cr.state, exitCode: r.exitCode }, 'task recorded');
    crashPoint('after-record');
    if (cr.state === 'QUEUED') {
      // Retry (or released): visible again, after a short pause for a failed attempt.
      await d.queue.release(receipt, outcome.kind === 'failed' ? Math.min(30, 2 ** task.attempts) : 0);
    } else {
      await d.queue.delete(receipt);
    }
  })();
  return { stop, done };
}

function describeFailure(r: RunResult): string {
  if (r.spawnError) return `could not start the command: ${r.spawnError}`;
  if (r.timedOut) return `timed out (${r.stoppedFor ?? 'timeout'})`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exited with code ${r.exitCode}`;
}

function taskEnv(d: AgentDeps, job: JobRecord, task: TaskRecord, dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...d.baseEnv,
    ...(job.env ?? {}),
    PATH: `${d.ws.bin}:${d.baseEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
    [ENV.JOB]: job.name,
    [ENV.TASK]: String(task.task),
    [ENV.ATTEMPT]: String(task.attempts),
    [ENV.INSTANCE]: d.instance,
    [ENV.INSTANCE_TYPE]: task.instanceType,
    [ENV.TASK_DIR]: dir,
    [ENV.AGENT_CONTEXT]: d.contextJson,
  };
  if (d.licenseFile) env.GRB_LICENSE_FILE = d.licenseFile;
  return env;
}
