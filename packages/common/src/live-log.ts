/**
 * A running task's output while it runs (`gq logs NAME TASK --follow`). On a local worker it is
 * the attempt's log file in the worker's folder (read in place). On EC2 the agent rewrites one
 * object per task, `keys.taskLiveLog`, every few seconds while new output arrives: a one-line
 * JSON header (which attempt, the byte range of the log it holds, whether the attempt has ended)
 * and then those bytes, the last LIVE_LOG_WINDOW_BYTES at most. Secrets in it are masked byte for
 * byte (log.ts maskSecrets), so that its offsets stay those of the log. The final log (log.txt)
 * is uploaded at the end as before.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';

/** The most of the log one live object holds (its tail). */
export const LIVE_LOG_WINDOW_BYTES = 1024 * 1024;
/**
 * The agent uploads the live object at most this often, and only when new output arrived: at
 * most 0.2 PUT a second per running task, far below the 3,500 PUT a second S3 takes per
 * partitioned prefix (https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html).
 */
export const LIVE_LOG_EVERY_MS = 5000;

const headerSchema = z.object({
  v: z.literal(1),
  attempt: z.number().int().nonnegative(),
  /** The attempt's start (its claim's startedAt): an attempt given back keeps its number. */
  startedAt: z.string(),
  /** Offset in the attempt's log of the first byte held, and of the byte after the last. */
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  /** The attempt's process has ended: `to` is the end of its log. */
  final: z.boolean(),
});

export type LiveChunk = z.infer<typeof headerSchema> & { bytes: Buffer };

export function encodeLiveChunk(c: Omit<LiveChunk, 'v'>): Buffer {
  const { bytes, ...h } = c;
  return Buffer.concat([Buffer.from(JSON.stringify({ v: 1, ...h }) + '\n'), bytes]);
}

/** The chunk in a live object; undefined when it is not one (damaged, or of another version). */
export function decodeLiveChunk(buf: Buffer): LiveChunk | undefined {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  } catch {
    return undefined;
  }
  const h = headerSchema.safeParse(header);
  const bytes = buf.subarray(nl + 1);
  if (!h.success || h.data.to - h.data.from !== bytes.length) return undefined;
  return { ...h.data, bytes };
}

/** A local worker's folder (agent run.ts; the reaper removes it when the worker is gone). */
export const localWorkdir = (home: string, job: string, instance: string): string => join(home, 'work', job, instance);

/** The log file of an attempt in a worker's folder, written while it runs and removed once uploaded. */
export const attemptLogFile = (workdir: string, task: number, attempt: number): string => join(workdir, 'logs', `task-${task}-${attempt}.log`);

/** Up to `max` bytes of `file` from `offset` on (fewer when the file is shorter). */
export function readFileRange(file: string, offset: number, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, Math.min(max, fstatSync(fd).size - offset)));
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, offset + n);
      if (r === 0) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
