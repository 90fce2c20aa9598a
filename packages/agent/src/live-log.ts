/**
 * The live log of a running attempt (common/src/live-log.ts): every LIVE_LOG_EVERY_MS, when the
 * attempt's log file has grown since the last upload, its tail (at most LIVE_LOG_WINDOW_BYTES,
 * secrets masked) replaces the task's live object. Nothing is sent while the task prints
 * nothing new, and one PUT at most per period. When the process ends, `stop` sends the last
 * bytes marked final, only if a live object was sent for this attempt (a follower may be reading
 * it); a shorter attempt sends none and is followed from its final log. Best effort: a failed
 * upload is logged and tried again at the next period; it never fails the task.
 */
import { statSync } from 'node:fs';
import { encodeLiveChunk, keys, readFileRange, LIVE_LOG_EVERY_MS, LIVE_LOG_WINDOW_BYTES, longestSecretBytes, maskSecrets, type ArtifactStore, type Logger } from '@gq/common';
import type { Clock } from './clock.js';

export interface LiveLogSpec {
  artifacts: ArtifactStore;
  job: string;
  task: number;
  attempt: number;
  startedAt: string;
  file: string;
  log: Logger;
  clock: Clock;
  everyMs?: number;
  windowBytes?: number;
}

/** The chunk to send of a log of `size` bytes: its tail, secrets masked (a secret cut by the window's start too). */
export function liveChunk(file: string, size: number, windowBytes: number, final: boolean): { from: number; to: number; bytes: Buffer } {
  const from = Math.max(0, size - windowBytes);
  // Read a secret's length before the window, so that one it cuts is recognised and masked too.
  const lead = Math.min(from, longestSecretBytes());
  const buf = readFileRange(file, from - lead, size - (from - lead));
  const held = maskSecrets(buf);
  const end = final ? buf.length : buf.length - held;
  return { from, to: from - lead + end, bytes: buf.subarray(lead, Math.max(lead, end)) };
}

/** `stop(false)`: the attempt is no longer ours (its lease was lost): its last bytes are not sent. */
export function startLiveLog(s: LiveLogSpec): { stop(sendLast?: boolean): Promise<void> } {
  const key = keys.taskLiveLog(s.job, s.task);
  const windowBytes = s.windowBytes ?? LIVE_LOG_WINDOW_BYTES;
  let sentTo = 0;
  let sent = false;
  let busy: Promise<void> = Promise.resolve();
  const send = (final: boolean) =>
    (busy = busy.then(async () => {
      let size: number;
      try {
        size = statSync(s.file).size;
      } catch {
        return; // not created yet
      }
      if (!final && size <= sentTo) return;
      const c = liveChunk(s.file, size, windowBytes, final);
      if (!final && c.to <= sentTo) return;
      try {
        await s.artifacts.putBytes(key, encodeLiveChunk({ attempt: s.attempt, startedAt: s.startedAt, final, ...c }));
        sentTo = c.to;
        sent = true;
      } catch (err) {
        s.log.warn({ err }, 'could not upload the live log; trying again shortly');
      }
    }));
  const cancel = s.clock.every(s.everyMs ?? LIVE_LOG_EVERY_MS, () => void send(false));
  return {
    async stop(sendLast = true) {
      cancel();
      await busy;
      if (sent && sendLast) await send(true);
    },
  };
}
