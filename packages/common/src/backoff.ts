/**
 * Bounded retries with exponential backoff for the few errors that AWS documents as "not yet":
 * eventual consistency right after gq created something (a launch template that Auto Scaling does
 * not see yet, an instance profile that EC2 does not see yet). Throttling and network errors are
 * retried by the SDK itself (clients.ts); this is only for answers that are final for the SDK but
 * not for gq.
 */
import { sleep } from './time.js';

export interface BackoffOptions {
  /** Tries in all, the first included (default 6). */
  tries?: number;
  /** Pause before the second try, doubled for each further one (default 1000 ms). */
  baseMs?: number;
  /** Longest pause (default 8000 ms). */
  maxMs?: number;
  /** Called before each pause (for a log line). */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  /** Injected in unit tests. */
  sleep?: (ms: number) => Promise<void>;
}

/** Pause before try `n + 1` after `n` failures: base · 2^(n-1), capped, jittered to 50–100 %. */
export function backoffDelay(n: number, baseMs = 1000, maxMs = 8000, random: () => number = Math.random): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, n - 1)) * (0.5 + random() / 2);
}

/**
 * Run `fn`; while it throws an error for which `retryable` holds, try again after a backoff, at
 * most `tries` times in all. The last error is thrown as it is.
 */
export async function retryWithBackoff<T>(fn: () => Promise<T>, retryable: (err: unknown) => boolean, o: BackoffOptions = {}): Promise<T> {
  const tries = Math.max(1, o.tries ?? 6);
  const pause = o.sleep ?? ((ms: number) => sleep(ms));
  for (let n = 1; ; n++) {
    try {
      return await fn();
    } catch (err) {
      if (n >= tries || !retryable(err)) throw err;
      const wait = backoffDelay(n, o.baseMs, o.maxMs);
      o.onRetry?.(err, n, wait);
      await pause(wait);
    }
  }
}
