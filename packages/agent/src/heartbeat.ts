/**
 * Keeps a running task ours: renews the status-store lease and the queue message's visibility at
 * a third of the lease, and reports when the task was cancelled or the lease was lost.
 */
import { MAX_VISIBILITY_SECONDS, type Logger, type StatusStore, type TaskQueue } from '@gq/common';
import { skipStep } from './faults.js';
import { realClock, type Clock } from './clock.js';

export type HeartbeatStop = 'cancel' | 'lost';

export interface HeartbeatOptions {
  status: StatusStore;
  queue: TaskQueue;
  job: string;
  task: number;
  instance: string;
  receipt: string;
  leaseSeconds: number;
  log: Logger;
  /** Called once when the task must stop (cancelled, or the lease is no longer ours). */
  onStop(reason: HeartbeatStop): void;
  /** Default the real clock. */
  clock?: Clock;
}

export interface Heartbeat {
  stop(): Promise<void>;
  /** Epoch ms of the last renewal the store accepted (the start, before the first one). */
  lastRenewedAt(): number;
}

export function startHeartbeat(o: HeartbeatOptions): Heartbeat {
  const clock = o.clock ?? realClock;
  // A third of the lease, and at least every 15 s so that `gq cancel` stops a task promptly.
  const everyMs = Math.max(200, Math.min(15_000, (o.leaseSeconds * 1000) / 3));
  let stopped = false;
  let signalled = false;
  let inFlight: Promise<void> = Promise.resolve();
  let failures = 0;
  // The claim renewed the lease just before the heartbeat started.
  let renewedAt = clock.now();

  const beat = async (): Promise<void> => {
    try {
      const sentAt = clock.now();
      const r = await o.status.heartbeat(o.job, o.task, o.instance, o.leaseSeconds * 1000);
      if (r !== 'lost') renewedAt = sentAt;
      if (r !== 'ok' && !signalled) {
        signalled = true;
        o.onStop(r);
      }
      if (r !== 'lost' && !skipStep('extend')) {
        // The message may have reached SQS's 12-hour limit; the status-store lease still
        // protects the task (another receiver sees the live lease and hides the message again).
        await o.queue.extend(o.receipt, Math.min(MAX_VISIBILITY_SECONDS, o.leaseSeconds)).catch((e: unknown) => {
          o.log.debug({ err: e }, 'could not extend message visibility');
        });
      }
      failures = 0;
    } catch (e) {
      failures++;
      o.log.warn({ err: e, failures }, 'heartbeat failed; will try again');
    }
  };

  const stopTimer = clock.every(everyMs, () => {
    if (stopped) return;
    inFlight = inFlight.then(beat);
  });

  return {
    async stop() {
      stopped = true;
      stopTimer();
      await inFlight;
    },
    lastRenewedAt: () => renewedAt,
  };
}
