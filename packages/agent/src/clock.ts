/**
 * The agent's time: what its loop, the task heartbeat and the install read and wait on. The real
 * clock by default; the agent's tests hand in a fake one that they advance, so that idle periods,
 * leases and pauses between attempts pass without waiting.
 */
import { sleep } from '@gq/common';

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms`, or at once when `signal` is aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` every `ms` until the returned function is called; never keeps the process alive. */
  every(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep,
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};
