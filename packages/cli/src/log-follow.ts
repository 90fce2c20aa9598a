/**
 * `gq logs NAME TASK --follow`: print a task's output as it runs and return when the task ends.
 * While an attempt runs, its live output is read from `LiveSource` (the worker's log file on
 * this machine; the live object the agent rewrites on EC2: common/src/live-log.ts), by byte
 * offset, so nothing is printed twice. When the attempt ends, the rest comes from the final
 * log; a retry is followed in turn. A task not started yet is waited for.
 */
import { ArtifactNotFoundError, attemptLogFile, dataHome, decodeLiveChunk, keys, localWorkdir, readFileRange, sleep, type Backend, type Config, type TaskRecord } from '@gq/common';
import { isPlainSegment } from '@gq/common/safe-path';

/** What an attempt has printed so far: bytes [from, from + bytes.length) of its log, and whether that is all. */
export interface LiveRead {
  from: number;
  bytes: Buffer;
  final: boolean;
}

export interface LiveSource {
  /** The running attempt's output (from `offset` on, or a tail starting later); undefined: none seen yet. */
  read(task: TaskRecord, offset: number): Promise<LiveRead | undefined>;
}

/** The most one look reads of a local log: a task that prints faster is shown at this pace. */
const LOCAL_READ_MAX = 4 * 1024 * 1024;

/** On this machine: the attempt's log file in its worker's folder. */
export function localLiveSource(config: Config, job: string): LiveSource {
  const home = dataHome(config);
  return {
    async read(t, offset) {
      if (!t.instance || !isPlainSegment(t.instance) || !isPlainSegment(job)) return undefined;
      const file = attemptLogFile(localWorkdir(home, job, t.instance), t.task, t.attempts);
      try {
        return { from: offset, bytes: readFileRange(file, offset, LOCAL_READ_MAX), final: false };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // not there yet, or any more (the attempt has ended)
        throw e;
      }
    },
  };
}

/** On AWS: the live object of the task, when it is of the running attempt. */
export function storeLiveSource(backend: Backend, job: string): LiveSource {
  return {
    async read(t) {
      let buf: Buffer;
      try {
        buf = await backend.artifacts.getBytes(keys.taskLiveLog(job, t.task));
      } catch (e) {
        if (e instanceof ArtifactNotFoundError) return undefined; // none sent yet
        throw e;
      }
      const c = decodeLiveChunk(buf);
      return c && c.attempt === t.attempts && c.startedAt === (t.startedAt ?? '') ? { from: c.from, bytes: c.bytes, final: c.final } : undefined;
    },
  };
}

export interface FollowIo {
  out(bytes: Buffer): void;
  /** A note about the follow itself (stderr). */
  note(line: string): void;
  /** The final log of the task's latest attempt (undefined: it printed nothing). */
  finalLog(t: TaskRecord): Promise<Buffer | undefined>;
}

export interface Followed {
  state: TaskRecord['state'];
  task: TaskRecord;
}

/** Follow task `taskNo` until it is SUCCEEDED, FAILED or CANCELLED. */
export async function followTask(backend: Backend, job: string, taskNo: number, source: LiveSource, io: FollowIo, pollMs: number): Promise<Followed> {
  let attempt: number | undefined; // the attempt being printed
  let finished: number | undefined; // the last attempt printed to its end
  let offset = 0;
  let saidQueued = false;
  const print = (r: LiveRead | undefined) => {
    if (!r) return;
    const to = r.from + r.bytes.length;
    if (to <= offset) return;
    if (r.from > offset) io.note(`[gq: ${r.from - offset} bytes of output not kept in the live log]`);
    io.out(r.bytes.subarray(Math.max(0, offset - r.from)));
    offset = to;
  };
  for (;;) {
    const t = await backend.status.getTask(job, taskNo);
    if (!t) throw new Error(`task ${taskNo} of job ${job} disappeared while following it`);
    if (attempt !== undefined && (t.state !== 'RUNNING' || t.attempts !== attempt)) {
      // The attempt followed has ended: the rest of its output, from its last live read or its
      // final log (the latest attempt's; uploaded before its end is recorded).
      const last = await source.read({ ...t, attempts: attempt, instance: t.lastInstance ?? t.instance }, offset);
      if (last?.final) print(last);
      else {
        const log = await io.finalLog(t);
        if (log) print({ from: 0, bytes: log, final: true });
      }
      if (t.state === 'QUEUED' || t.attempts !== attempt) io.note(`[gq: attempt ${attempt} of task ${taskNo} ended${describeEnd(t)}; the task is tried again]`);
      finished = attempt;
      attempt = undefined;
      offset = 0;
    }
    if (t.state === 'SUCCEEDED' || t.state === 'FAILED' || t.state === 'CANCELLED') {
      // Its last attempt was not followed (it ended before, or between two looks): its whole log.
      if (finished !== t.attempts) {
        const log = await io.finalLog(t);
        if (log) io.out(log);
      }
      return { state: t.state, task: t };
    }
    if (t.state === 'RUNNING') {
      if (attempt === undefined) {
        attempt = t.attempts;
        io.note(`[gq: task ${taskNo} is running (attempt ${attempt} on ${t.instance ?? '?'}); following its output until it ends]`);
      }
      print(await source.read(t, offset));
    } else if (!saidQueued) {
      io.note(`[gq: task ${taskNo} is queued; waiting for it to start]`);
      saidQueued = true;
    }
    await sleep(pollMs);
  }
}

/** ", exit code 2" / ", killed by SIGKILL" / "" for how the task's last attempt ended. */
export function describeEnd(t: TaskRecord): string {
  if (t.exitCode !== undefined) return `, exit code ${t.exitCode}`;
  if (t.signal) return `, ${t.signal}`;
  return t.error ? `: ${t.error}` : '';
}
