/**
 * The one backoff policy of gq: every pause before trying again is `backoffDelay`, an exponential
 * pause capped and jittered. Its named uses (`BACKOFF`) differ only in base, cap and jitter:
 *
 *   contention  a DynamoDB write cancelled by a transaction conflict or throttled: 10 ms doubling
 *               to 1 s, full jitter (AWS's advice for contention: spread the retries of racing
 *               writers over the whole interval). Retried without a bound on the count: a worker
 *               never gives up because another won a race; the wait is what is bounded.
 *   transient   AWS out of reach, throttled past the SDK's own retries: 1 s doubling to 30 s.
 *   notYet      AWS's "not yet" answers right after gq created something (retryWithBackoff).
 *
 * https://docs.aws.amazon.com/general/latest/gr/api-retries.html (retries and exponential backoff),
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html (conflicts).
 */
import { sleep } from './time.js';

export interface BackoffPolicy {
  /** Pause before the second try (after one failure). */
  baseMs: number;
  /** Longest pause. */
  maxMs: number;
  /** 'full': uniform over 0–100 % of the pause; 'equal': over 50–100 %. */
  jitter: 'full' | 'equal';
}

export const BACKOFF = {
  contention: { baseMs: 10, maxMs: 1000, jitter: 'full' },
  transient: { baseMs: 1000, maxMs: 30_000, jitter: 'equal' },
  notYet: { baseMs: 1000, maxMs: 8000, jitter: 'equal' },
} as const satisfies Record<string, BackoffPolicy>;

/** Pause before try `n + 1` after `n` failures (n ≥ 1): base · 2^(n-1), capped, jittered. */
export function backoffDelay(n: number, baseMs = 1000, maxMs = 8000, random: () => number = Math.random, jitter: BackoffPolicy['jitter'] = 'equal'): number {
  // 2 ** 40 is far past any cap; the exponent is bounded so that the product stays finite.
  const pause = Math.min(maxMs, baseMs * 2 ** Math.min(40, Math.max(0, n - 1)));
  return jitter === 'full' ? pause * random() : pause * (0.5 + random() / 2);
}

/** `backoffDelay` of a named policy. */
export function policyDelay(policy: BackoffPolicy, n: number, random: () => number = Math.random): number {
  return backoffDelay(n, policy.baseMs, policy.maxMs, random, policy.jitter);
}

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
      const wait = backoffDelay(n, o.baseMs ?? BACKOFF.notYet.baseMs, o.maxMs ?? BACKOFF.notYet.maxMs);
      o.onRetry?.(err, n, wait);
      await pause(wait);
    }
  }
}
