/**
 * Start a task's command with the optional native addon @gq/spawn (posix_spawn: no fork of the
 * agent) instead of Node's child_process (a fork of the whole agent process, then an exec). The
 * child is set up as child_process sets up a `detached` child with stdio [ignore, fd, pipe]: a new
 * session, stdin /dev/null, stdout on the given descriptor, stderr through a pipe to us, the
 * given folder and environment, every signal at its default and none blocked. The result looks
 * like a ChildProcess to runCommand (process.ts): `pid`, `exitCode`, `stderr`, and the events
 * 'error', 'exit' (code, signal) and 'close' (after 'exit' and the end of stderr).
 *
 * `nativeSpawner()` is undefined when the addon is not built (no C compiler at install), on EC2
 * (the agent's bundle leaves it out), or when GQ_NODE_SPAWN=1: runCommand then uses child_process.
 *
 * Exits are collected on SIGCHLD with waitpid for our own pids only (libuv does the same for its
 * own children, so neither takes the other's), and once a second as a safety net.
 */
import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { constants as osc } from 'node:os';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { directExec, lookPath } from './direct-exec.js';

interface Addon {
  spawn(file: string, argv: readonly string[], env: readonly string[], cwd: string, stdoutFd: number, stderrFd: number): number;
  reap(pid: number): [number, number] | undefined;
  pipe(): [number, number];
}

/** Set to 1 to start commands with Node's child_process even where the addon is built. */
export const NODE_SPAWN_ENV = 'GQ_NODE_SPAWN';

let addon: Addon | null | undefined;
function loadAddon(): Addon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('@gq/spawn') as Addon | null;
    } catch {
      addon = null;
    }
  }
  return addon;
}

export interface SpawnOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The child's stdout. */
  stdoutFd: number;
}

export interface NativeChild extends EventEmitter {
  readonly pid: number | undefined;
  readonly exitCode: number | null;
  readonly stderr: Readable | null;
}

/** Runs a shell command as `bash -c COMMAND` would (direct-exec.ts), returning its child. */
export type Spawner = (command: string, opts: SpawnOptions) => NativeChild;

/** The native spawner, or undefined where child_process must be used (see the header). */
export function nativeSpawner(): Spawner | undefined {
  if (process.env[NODE_SPAWN_ENV] === '1') return undefined;
  const a = loadAddon();
  if (!a) return undefined;
  listen();
  return (command, opts) => start(a, command, opts);
}

const signalName = new Map<number, NodeJS.Signals>(Object.entries(osc.signals).map(([name, n]) => [n, name as NodeJS.Signals]));
const errnoName = new Map<number, string>(Object.entries(osc.errno).map(([name, n]) => [n, name]));

/** Children started here and not yet reaped. */
const running = new Map<number, (code: number, signal: number) => void>();
let safetyNet: NodeJS.Timeout | undefined;

function reapAll(): void {
  const a = addon;
  if (!a) return;
  for (const [pid, done] of running) {
    let r: [number, number] | undefined;
    try {
      r = a.reap(pid);
    } catch {
      r = [-1, 0]; // not our child any more (cannot happen): do not wait for it forever
    }
    if (r) {
      running.delete(pid);
      done(r[0], r[1]);
    }
  }
  if (running.size === 0 && safetyNet) {
    clearInterval(safetyNet);
    safetyNet = undefined;
  }
}

let listening = false;
/**
 * Listen for SIGCHLD before the first child is started: a signal that comes before the listener
 * is lost (its default is to be ignored), and the exit of that child was then seen only by the
 * safety net a second later (every worker's first task took 1 s).
 */
function listen(): void {
  if (listening) return;
  process.on('SIGCHLD', reapAll);
  listening = true;
}

function watch(pid: number, done: (code: number, signal: number) => void): void {
  listen();
  running.set(pid, done);
  // Ref'd: it keeps the agent alive while a command runs, as a ChildProcess does.
  safetyNet ??= setInterval(reapAll, 1000);
}

/** The file of `command` (bash), found as libuv finds it: execvp with the child's PATH (its default when unset). */
function which(command: string, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (command.includes('/')) return resolve(cwd, command);
  return lookPath(command, env.PATH ?? '/bin:/usr/bin', cwd)?.file;
}

function start(a: Addon, shellCommand: string, opts: SpawnOptions): NativeChild {
  const command = 'bash';
  const child = new EventEmitter() as NativeChild & { pid: number | undefined; exitCode: number | null; stderr: Socket | null };
  child.pid = undefined;
  child.exitCode = null;
  child.stderr = null;
  const fail = (errnoOrNeg: number) => {
    const errno = Math.abs(errnoOrNeg);
    const code = errnoName.get(errno) ?? `errno ${errno}`;
    const e = Object.assign(new Error(`spawn ${command} ${code}`), { errno: -errno, code, syscall: `spawn ${command}`, path: command });
    process.nextTick(() => child.emit('error', e));
    return child;
  };
  const envOf = (vars: NodeJS.ProcessEnv) => {
    const env: string[] = [];
    for (const [k, v] of Object.entries(vars)) if (v !== undefined) env.push(`${k}=${v}`);
    return env;
  };
  let readEnd: number;
  let writeEnd: number;
  try {
    [readEnd, writeEnd] = a.pipe();
  } catch (e) {
    return fail((e as { errno?: number }).errno ?? osc.errno.EMFILE); // out of descriptors: as child_process reports it
  }
  let pid: number | undefined;
  try {
    // The program itself when bash would only exec it; bash when that cannot start (bash then
    // does what it does with it: runs a script without #!, reports a permission error, …).
    const direct = directExec(shellCommand, opts.env, opts.cwd);
    if (direct) {
      try {
        pid = a.spawn(direct.file, direct.argv, envOf(direct.env), opts.cwd, opts.stdoutFd, writeEnd);
      } catch {
        pid = undefined;
      }
    }
    if (pid === undefined) {
      const file = which(command, opts.env, opts.cwd);
      if (!file) {
        closeSync(readEnd);
        return fail(osc.errno.ENOENT);
      }
      pid = a.spawn(file, [command, '-c', shellCommand], envOf(opts.env), opts.cwd, opts.stdoutFd, writeEnd);
    }
  } catch (e) {
    closeSync(readEnd);
    return fail((e as { errno?: number }).errno ?? osc.errno.EIO);
  } finally {
    // Only the child holds the write end now, so the pipe ends when it (and what it started) does.
    closeSync(writeEnd);
  }
  child.pid = pid;
  const stderr = new Socket({ fd: readEnd, readable: true, writable: false });
  child.stderr = stderr;
  let exited: [number | null, NodeJS.Signals | null] | undefined;
  let stderrClosed = false;
  const maybeClose = () => {
    if (exited && stderrClosed) child.emit('close', ...exited);
  };
  stderr.on('close', () => {
    stderrClosed = true;
    maybeClose();
  });
  stderr.on('error', () => {
    /* a read error ends the stream: 'close' follows */
  });
  watch(pid, (code, signal) => {
    exited = signal ? [null, signalName.get(signal) ?? null] : [code, null];
    child.exitCode = exited[0];
    child.emit('exit', ...exited);
    maybeClose();
  });
  return child;
}
