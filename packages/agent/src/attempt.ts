/**
 * One claimed task, start to end: fresh folder → run with heartbeat → upload results, outputs
 * and log → record the outcome → delete or release the message. Uploads come before the status
 * write and the status write before the delete, so a crash at any point leaves the task to run
 * again, never a SUCCEEDED task without its results.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attemptLogFile, ENV, hasSecrets, keys, ReceiptInvalidError, redactText, type JobRecord, type Logger, type TaskOutcome, type TaskRecord } from '@gq/common';
import type { AgentDeps } from './deps.js';
import { startHeartbeat, type HeartbeatStop } from './heartbeat.js';
import { runCommand, type RunResult } from './process.js';
import { OutputsRefusedError, uploadOutputs, type Uploaded } from './uploads.js';
import { freshLogFile, freshTaskDir, putLogAside, removeTaskDir, runFileOf } from './workspace.js';
import { crashPoint } from './faults.js';
import { GaveUpError, persist } from './retry.js';
import { chownTree, drainTagSpool, ownedDir, TAG_SPOOL_ENV, taskUserEnv } from './task-user.js';
import { validateTag } from './tag.js';
import { realClock } from './clock.js';
import { checkpointDir, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { startLiveLog } from './live-log.js';
import { moveToOnDemand } from './on-demand.js';

export interface TaskRun {
  /** Stop the task now; `release` gives it back unrun (not charged as an attempt). */
  stop(reason: 'release' | 'shutdown'): void;
  done: Promise<void>;
}

/** `slot`: which of the worker's slots runs it (each has its own run file: workspace.ts). */
export function runTask(d: AgentDeps, job: JobRecord, task: TaskRecord, receipt: string, slot = 0): TaskRun {
  const clock = d.clock ?? realClock;
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
    const logFile = freshLogFile(d.ws, slot, attemptLogFile(d.ws.root, task.task, task.attempts));
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
      clock,
    });
    const spool = d.taskUser ? startTagRelay(d, job, task, log) : undefined;
    const ckpt = checkpointDir(d.ws, task.task, d.taskUser);
    let r: RunResult;
    let live: ReturnType<typeof startLiveLog> | undefined;
    try {
      if (d.taskUser) chownTree(dir, d.taskUser);
      if (task.checkpointKey) await restoreCheckpoint(d.backend.artifacts, task.checkpointKey, ckpt, log, d.taskUser);
      const p = runCommand({
        command: task.command,
        cwd: dir,
        env: { ...taskEnv(d, job, task, dir, spool?.dir), [ENV.CHECKPOINT_DIR]: ckpt },
        logFile,
        timeoutSeconds: job.timeoutSeconds,
        runFile: join(d.ws.root, runFileOf(slot)),
        user: d.taskUser,
      });
      stopProcess = p.stop;
      if (stopReason) p.stop(stopReason);
      if (d.liveLog) live = startLiveLog({ artifacts: d.backend.artifacts, job: job.name, task: task.task, attempt: task.attempts, startedAt: task.startedAt ?? '', file: logFile, log, clock });
      r = await p.result;
    } finally {
      await live?.stop(stopReason !== 'lost');
      await hb.stop();
      await spool?.stop();
    }
    log.debug({ exitCode: r.exitCode, signal: r.signal, ms: r.durationMs }, 'command ended');

    // Uploads that had to be retried (AWS out of reach) first check that the task is still ours:
    // if another worker took it over meanwhile, its newer files must not be overwritten.
    const stillOurs = async () =>
      (await d.backend.status.heartbeat(job.name, task.task, d.instance, job.visibilitySeconds * 1000)) !== 'lost';
    // Heartbeats that did not reach the store for half a lease (a network cut, a paused machine):
    // another worker may hold the task now, and its results (same keys) must not be overwritten
    // with this attempt's. Ask once before uploading anything; no extra call when they did.
    if (stopReason !== 'lost' && clock.now() - hb.lastRenewedAt() > (job.visibilitySeconds * 1000) / 2) {
      if (!(await stillOurs().catch(() => true))) stopReason = 'lost';
    }
    if (stopReason === 'lost') {
      // Another worker owns the task now; record nothing and leave the message alone.
      log.warn('lease lost while running; the task belongs to another worker now');
      removeTaskDir(dir);
      removeTaskDir(ckpt);
      return;
    }
    const finish = async (): Promise<void> => {
      // Interrupted: its process group is stopped, so the checkpoint folder is still; saved
      // first (bounded: checkpoint.ts), and before the release is recorded, so that the next
      // attempt, wherever it is claimed, finds it.
      const givenBack = stopReason === 'release' || stopReason === 'shutdown';
      const checkpointKey = givenBack ? await saveCheckpoint(d.backend.artifacts, job.name, task.task, ckpt, log, d.taskUser) : undefined;
      removeTaskDir(ckpt);
      // A task that printed nothing has no log to keep.
      const logKey = statSync(logFile).size > 0 ? keys.taskLog(job.name, task.task) : undefined;
      // The work is done: keep trying through a network blip rather than lose it (retry.ts).
      if (logKey) {
        redactFile(logFile);
        await persist('upload the task log', () => d.backend.artifacts.putFile(logKey, logFile), { log, stillWanted: stillOurs });
      }
      // An empty log stays, as the slot's next empty log (freshLogFile).
      putLogAside(d.ws, slot, logFile);

      let outcome: TaskOutcome;
      if (stopReason === 'cancel') outcome = { kind: 'cancelled', logKey };
      else if (givenBack)
        outcome =
          stopReason === 'release'
            ? { kind: 'released', reason: 'instance interrupted', interrupted: true, checkpointKey }
            : { kind: 'released', reason: 'agent stopped', checkpointKey };
      else if (r.exitCode === 0 && !r.timedOut) {
        let up: Uploaded | OutputsRefusedError;
        try {
          up = await persist(
            'upload the task results',
            () => uploadOutputs(d.backend.artifacts, job.name, task.task, dir, job.resultsPath, job.outputs),
            { log, stillWanted: stillOurs },
          );
        } catch (e) {
          if (!(e instanceof OutputsRefusedError)) throw e;
          up = e;
        }
        outcome =
          up instanceof OutputsRefusedError
            ? { kind: 'failed', exitCode: 0, error: up.message, logKey, retryable: false }
            : {
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
          stderrTail: redactText(r.stderrTail),
          logKey,
          retryable: true,
          ...(r.timedOut ? { timedOut: true } : {}),
        };
      }
      removeTaskDir(dir);

      crashPoint('after-upload');
      // A repeat after a write that did land (its answer was lost) finds the task no longer ours
      // and reports 'lost': the message then comes back, finds the task final and is deleted.
      const cr = await persist('record the outcome', () => d.backend.status.complete(job.name, task.task, d.instance, outcome), { log });
      if (cr.kind === 'lost') {
        log.warn('lease lost before the outcome was recorded; leaving the message to its new owner');
        return;
      }
      log.info({ state: cr.state, exitCode: r.exitCode }, 'task recorded');
      crashPoint('after-record');
      if (cr.state === 'QUEUED') {
        // Interrupted once too often on Spot: the next attempt runs on on-demand (on-demand.ts).
        if (outcome.kind === 'released' && outcome.interrupted && (await moveToOnDemand(d, log, job, task, receipt))) return;
        // Retry (or released): visible again, after a short pause for a failed attempt.
        await giveBack(d, log, task.task, receipt, outcome.kind === 'failed' ? Math.min(30, 2 ** task.attempts) : 0);
      } else {
        // The outcome is recorded: a delete that fails (or is ignored as stale) only means the
        // message comes back later, finds the task final and is deleted then.
        await d.queue.delete(receipt).catch((e: unknown) => log.warn({ err: e }, 'could not delete the message; it will be deleted when it comes back'));
      }
    };
    try {
      await finish();
    } catch (e) {
      if (!(e instanceof GaveUpError)) throw e;
      log.warn('the task was taken over while its files were being uploaded; leaving it to its new owner');
      removeTaskDir(dir);
      removeTaskDir(ckpt);
    }
  })();
  return { stop, done };
}

/**
 * Make a task that went back to QUEUED visible again. Our receipt is stale when the message was
 * delivered again while the task ran (a receiver found our lease and hid the message again, for
 * up to hours on a long task; or SQS's 12-hour limit passed): that delivery is not ours to change,
 * so the task is sent again instead. Without this the worker died of the stale receipt, and the
 * retry waited for the other receiver's hide to run out. The old delivery, when it returns, finds
 * the task claimed (hidden again) or final (deleted): the claim keeps the task to one run at a time.
 * Any other failure is only logged: the message comes back by itself after its visibility timeout.
 */
async function giveBack(d: AgentDeps, log: Logger, taskNo: number, receipt: string, delaySeconds: number): Promise<void> {
  try {
    await d.queue.release(receipt, delaySeconds);
  } catch (e) {
    if (!(e instanceof ReceiptInvalidError)) {
      log.warn({ err: e }, 'could not give the message back; it comes back after its visibility timeout');
      return;
    }
    log.warn('the message was delivered again while the task ran; sending the task again for its retry');
    await d.queue.send([taskNo]).catch((err: unknown) => log.warn({ err }, 'could not send the task again; its old message will bring it back'));
  }
}

function describeFailure(r: RunResult): string {
  if (r.spawnError) return `could not start the command: ${r.spawnError}`;
  if (r.timedOut) return `timed out (${r.stoppedFor ?? 'timeout'})`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exited with code ${r.exitCode}`;
}

/**
 * Tags a task run as the task user leaves in its spool folder (it cannot reach the status store):
 * recorded every second and once more when the task ends. A tag that cannot be recorded is logged,
 * as `gq-agent tag` run directly would fail it.
 */
function startTagRelay(d: AgentDeps, job: JobRecord, task: TaskRecord, log: Logger): { dir: string; stop(): Promise<void> } {
  const user = d.taskUser!;
  const dir = ownedDir(join(d.ws.root, 'tags', `${task.task}-${task.attempts}`), user);
  let busy: Promise<void> = Promise.resolve();
  const drain = () =>
    (busy = busy.then(async () => {
      for (const t of drainTagSpool(dir)) {
        try {
          validateTag(t.key, t.value);
          await d.backend.status.setTag(job.name, task.task, t.key, t.value);
          if (d.tagInstance) await d.tagInstance(t.key, t.value);
        } catch (e) {
          log.warn({ err: e, key: t.key }, 'could not record a tag of the task');
        }
      }
    }));
  const timer = setInterval(() => void drain(), 1000);
  timer.unref();
  return {
    dir,
    async stop() {
      clearInterval(timer);
      await drain();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function taskEnv(d: AgentDeps, job: JobRecord, task: TaskRecord, dir: string, tagSpool?: string): NodeJS.ProcessEnv {
  let env: NodeJS.ProcessEnv = {
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
  if (d.taskUser) {
    env = taskUserEnv(env, d.taskUser, ownedDir(join(d.ws.root, 'home'), d.taskUser), d.taskAwsAccess ?? false);
    if (tagSpool) env[TAG_SPOOL_ENV] = tagSpool;
  }
  return env;
}

/** A task that prints the licence must not publish it: secrets in its log are redacted. */
const MAX_REDACT_BYTES = 64 * 1024 * 1024;
function redactFile(file: string): void {
  if (!hasSecrets() || statSync(file).size > MAX_REDACT_BYTES) return;
  const text = readFileSync(file, 'utf8');
  const clean = redactText(text);
  if (clean !== text) writeFileSync(file, clean);
}
