/**
 * When AWS (or the local store) cannot be reached for longer than the SDK's own retries last
 * (8 attempts, a few seconds), the agent waits and tries again rather than dying or leaving: a
 * network blip must never cost a finished task its results, nor the fleet its workers.
 *
 * Only transient failures are retried here — the network (connection refused/reset, timeouts),
 * throttling and 5xx answers, a busy SQLite file. Anything else (a missing queue, access denied,
 * a bug) is thrown at once, as before.
 */
import { BACKOFF, backoffDelay, NETWORK_ERROR_CODES, sleep, type Logger } from '@gq/common';

/** The network's codes (common/src/network-errors.ts), and a busy SQLite file's. */
const NETWORK_CODES: ReadonlySet<string> = new Set([...NETWORK_ERROR_CODES, 'SQLITE_BUSY', 'SQLITE_LOCKED']);

const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  // Throttling, as the SDK classifies it.
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);

interface ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Network trouble, throttling or a server-side error: worth trying again later. */
export function isTransient(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 5) return false;
  const e = err as ErrorLike;
  if (e.name === 'AbortError') return false;
  if (e.$retryable !== undefined) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status === 429 || (status !== undefined && status >= 500 && status <= 599)) return true;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (/socket hang up/i.test(e.message ?? '')) return true;
  if (e.cause !== undefined) return isTransient(e.cause, depth + 1);
  if (err instanceof AggregateError) return err.errors.some((x) => isTransient(x, depth + 1));
  return false;
}

/** Pause after `n` failures: the `transient` policy of backoff.ts (1 s doubling to 30 s, jittered to 50–100 %). */
export function backoffMs(n: number, maxMs: number = BACKOFF.transient.maxMs): number {
  return backoffDelay(Math.max(1, n), BACKOFF.transient.baseMs, maxMs, Math.random, BACKOFF.transient.jitter);
}

export interface PersistOptions {
  log: Logger;
  /** Give up (throw the last error) once this much time has passed. Default 15 minutes. */
  deadlineMs?: number;
  /** Stop waiting early (the error is thrown then). */
  signal?: AbortSignal;
  /** Asked before each retry; false stops with a `GaveUpError` (e.g. the task's lease was lost). */
  stillWanted?: () => Promise<boolean>;
}

/** `persist` stopped because `stillWanted` said the work is no longer ours to do. */
export class GaveUpError extends Error {
  override name = 'GaveUpError';
}

/**
 * Run `fn` until it succeeds, waiting `backoffMs` between tries, as long as it fails transiently
 * and the deadline has not passed. `fn` must be safe to repeat (uploads, conditional writes).
 */
export async function persist<T>(what: string, fn: () => Promise<T>, o: PersistOptions): Promise<T> {
  const deadline = Date.now() + (o.deadlineMs ?? 15 * 60_000);
  for (let n = 1; ; n++) {
    try {
      return await fn();
    } catch (e) {
      const wait = backoffMs(n);
      if (!isTransient(e) || o.signal?.aborted || Date.now() + wait > deadline) throw e;
      o.log.warn({ err: e, tries: n, waitMs: Math.round(wait) }, `could not ${what}; trying again`);
      await sleep(wait, o.signal);
      if (o.stillWanted && !(await o.stillWanted().catch(() => true))) throw new GaveUpError(`gave up: ${what}`);
    }
  }
}
