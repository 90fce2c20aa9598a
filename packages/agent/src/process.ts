/**
 * Runs one shell command in its own process group, with a log file for combined output, a tail of
 * stderr, a timeout, and a way to stop it (TERM, then KILL after a grace period).
 */
import { spawn } from 'node:child_process';
import { randomToken } from '@gq/common';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { nativeSpawner } from './fast-spawn.js';

export interface RunSpec {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** 0 = no timeout. */
  timeoutSeconds: number;
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  graceSeconds?: number;
  /**
   * While the command runs, this file holds "<process group id> <token>", and the command's
   * environment has GQ_RUN_ID=<token>. The command runs in its own process group, so it outlives
   * a worker killed with SIGKILL; on the local backend the fleet uses the file to stop what a
   * lost worker left running (see reapRun in @gq/common local/procs.ts). Blanked (spaces) when
   * it ends, and written in place, never truncated or removed: a slot's next command uses it
   * again without a file system allocation (freeing a block costs a millisecond on ext4 with
   * `discard`). A blank run file names no command; reapRun removes it.
   */
  runFile?: string;
  /** Run as this user (the agent runs as root on EC2); default: the agent's own user. */
  user?: { uid: number; gid: number };
}

/** Environment variable that marks the processes of one command run (see RunSpec.runFile). */
export const RUN_ID_ENV = 'GQ_RUN_ID';

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Why we stopped it, when we did. */
  stoppedFor?: string;
  stderrTail: string;
  durationMs: number;
  /** The command could not be started at all. */
  spawnError?: string;
}

export interface RunningProcess {
  result: Promise<RunResult>;
  stop(reason: string): void;
  pid: number | undefined;
}

const TAIL_BYTES = 4096;
/** After the command exited, how long its stderr pipe may stay open (held by a process outside its group). */
const STDERR_DRAIN_MS = 1000;

/** A run file's fixed length: "<pgid> <token>\n" (at most 7 + 1 + 24 + 1 bytes), padded with spaces. */
const RUN_FILE_BYTES = 64;

/** Write `text` over the run file in place (created if missing), padded to RUN_FILE_BYTES. */
function writeRunFile(file: string, text: string): void {
  try {
    const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT, 0o644);
    try {
      writeSync(fd, text.padEnd(RUN_FILE_BYTES, ' '), 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* only a help for cleaning up after a crash */
  }
}

export function runCommand(spec: RunSpec): RunningProcess {
  const started = Date.now();
  // stdout goes straight to the log file; stderr passes through us for its tail, into the same file.
  const log = openSync(spec.logFile, 'a');
  const runId = spec.runFile ? randomToken(12, 'hex') : undefined;
  const env = runId ? { ...spec.env, [RUN_ID_ENV]: runId } : spec.env;
  // posix_spawn where the addon is built (fast-spawn.ts: no fork of the agent, same set-up);
  // child_process otherwise, and always for another user (uid/gid: EC2, where there is no addon).
  const native = spec.user ? undefined : nativeSpawner();
  const child = native
    ? native(spec.command, { cwd: spec.cwd, env, stdoutFd: log })
    : spawn('bash', ['-c', spec.command], {
        cwd: spec.cwd,
        env,
        detached: true, // own process group: stop() reaches everything the command started
        // setgid + setuid in the child (libuv also drops the supplementary groups).
        ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
        stdio: ['ignore', log, 'pipe'],
      });
  let tail = '';
  let timedOut = false;
  let stoppedFor: string | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let spawnError: string | undefined;
  if (spec.runFile && child.pid !== undefined) writeRunFile(spec.runFile, `${child.pid} ${runId}\n`);

  child.stderr?.on('data', (chunk: Buffer) => {
    writeSync(log, chunk);
    tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
  });

  const killGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const stop = (reason: string) => {
    if (stoppedFor || child.exitCode !== null) return;
    stoppedFor = reason;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), (spec.graceSeconds ?? 10) * 1000);
    killTimer.unref();
  };
  const timeout =
    spec.timeoutSeconds > 0
      ? setTimeout(() => {
          timedOut = true;
          stop(`timeout after ${spec.timeoutSeconds}s`);
        }, spec.timeoutSeconds * 1000)
      : undefined;

  const result = new Promise<RunResult>((resolve) => {
    let finished = false;
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (finished) return;
      finished = true;
      if (timeout) clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      if (drainTimer) clearTimeout(drainTimer);
      // Whatever the command left behind in its group goes too.
      killGroup('SIGKILL');
      child.stderr?.destroy();
      closeSync(log);
      if (spec.runFile) writeRunFile(spec.runFile, '');
      resolve({
        exitCode: code,
        signal,
        timedOut,
        stoppedFor,
        stderrTail: tail.split('\n').slice(-20).join('\n').trim(),
        durationMs: Date.now() - started,
        spawnError,
      });
    };
    child.on('error', (e) => {
      spawnError = e.message;
      if (child.pid === undefined) finish(null, null); // never started: no 'close' will follow
    });
    // The command is over when its shell exits, not when the last holder of its stderr closes it:
    // a process it left in the background (`sleep 600 &`, a daemon) would otherwise keep the task
    // running for as long as it lives. On exit the group is killed; 'close' then follows as soon as
    // the pipe is read to its end (what the command wrote before exiting is in the pipe and is kept).
    // A holder outside the group (one that called setsid) cannot be reached that way: the pipe is
    // given up after STDERR_DRAIN_MS.
    child.on('exit', (code, signal) => {
      killGroup('SIGKILL');
      drainTimer = setTimeout(() => finish(code, signal), STDERR_DRAIN_MS);
      drainTimer.unref();
    });
    child.on('close', finish);
  });
  return { result, stop, pid: child.pid };
}
