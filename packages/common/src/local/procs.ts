/** Is a worker process alive? Guards against zombies and against a pid reused by another program. */
import { readdirSync, readFileSync, rmSync } from 'node:fs';

/**
 * True when `pid` is a live (not zombie) process; on Linux, also that its command line carries
 * `marker` (the worker's instance id), so a recycled pid is never taken for our worker.
 */
export function processAlive(pid: number | undefined, marker?: string): boolean {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X' || state === 'x') return false;
    if (marker === undefined) return true;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker);
  } catch {
    return false; // vanished meanwhile
  }
}

/**
 * When process `pid` started (Linux: field 22 of /proc/<pid>/stat, clock ticks since boot), or
 * undefined when it is gone or the system has no /proc. With the pid it names one process for good.
 */
export function processStartTime(pid: number | undefined): string | undefined {
  if (process.platform !== 'linux' || !pid || !Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3, so starttime (field 22) is the 20th one from there.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** What the local backend records about a worker process (InstanceRecord's fields). */
export interface WorkerProcess {
  pid?: number;
  pidStart?: string;
  /** The worker's instance id (on its command line when the local fleet started it). */
  instance: string;
}

/**
 * Is this worker's process alive? A pid that is gone (or a zombie) is dead. A live pid is the
 * worker's only if it started when the worker did (pidStart, recorded by the status store); a
 * record without a start time falls back to the instance id on the command line.
 */
export function workerAlive(w: WorkerProcess): boolean {
  if (w.pidStart === undefined || process.platform !== 'linux') return processAlive(w.pid, w.instance);
  if (!processAlive(w.pid)) return false;
  const start = processStartTime(w.pid);
  return start === undefined ? false : start === w.pidStart;
}

/** Live members of process group `pgid` (Linux: from /proc). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ..." (comm may hold spaces and parentheses)
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && fields[0] !== 'X' && Number(fields[2]) === pgid) out.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * Stop what a lost worker left running. The agent runs each command (install script or task) in
 * its own process group and, while it runs, keeps `runFile` = "<pgid> <token>" with GQ_RUN_ID=<token>
 * in the command's environment. A worker killed with SIGKILL cannot stop that group, so the
 * command ran on beside its own retry. This kills the group, but only if one of its processes
 * carries the token (so a recycled process group id is never hit), and removes the file.
 * Linux only (elsewhere the group cannot be checked and is left alone). Returns whether it killed.
 */
export function reapRun(runFile: string): boolean {
  let text: string;
  try {
    text = readFileSync(runFile, 'utf8');
  } catch {
    return false;
  }
  const [pgidText, token] = text.trim().split(' ');
  const pgid = Number(pgidText);
  let killed = false;
  if (process.platform === 'linux' && Number.isSafeInteger(pgid) && pgid > 1 && token) {
    const ours = groupMembers(pgid).some((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`GQ_RUN_ID=${token}`);
      } catch {
        return false;
      }
    });
    if (ours) {
      try {
        process.kill(-pgid, 'SIGKILL');
        killed = true;
      } catch {
        /* gone meanwhile */
      }
    }
  }
  rmSync(runFile, { force: true });
  return killed;
}
