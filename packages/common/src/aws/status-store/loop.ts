/**
 * The one read-decide-write loop of the DynamoDB store. Each try reads what it decides from (a
 * task, a chunk of tasks, nothing at all for a create), decides, and writes conditionally on what
 * it read. A write that lost its condition means another writer succeeded: the loop reads and
 * decides again, with no pause and no bound (or stops, for a caller with a fallback). A write
 * cancelled by a transaction conflict or throttled is tried again after the `contention` backoff
 * (backoff.ts), with no bound on the count either: a worker never gives up because another won a
 * race; the pause is what is bounded.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
 */
import { BACKOFF, policyDelay } from '../../backoff.js';
import { sleep } from '../../time.js';
import type { WriteOutcome } from './write-outcome.js';

/** One try: what was decided from what was read. */
export interface Plan<R> {
  /** The answer: once `write` is ok, or at once when there is no `write`. */
  result: R;
  /** The conditional write that makes `result` true; absent when there is nothing to write. */
  write?: () => Promise<WriteOutcome>;
}

/** What `readDecideWrite(plan, 'stop')` answers when a write lost its condition. */
export const CONDITION_FAILED: unique symbol = Symbol('condition failed');

/** The `contention` pause before try `n + 1` after `n` contended tries. */
export function contentionPause(n: number): Promise<void> {
  return sleep(policyDelay(BACKOFF.contention, Math.max(1, n)));
}

/**
 * Try `plan` until its write is ok or it has nothing to write, and answer its result. On a
 * failed condition: plan again (`again`, the default) or answer CONDITION_FAILED (`stop`).
 */
export function readDecideWrite<R>(plan: () => Promise<Plan<R>>): Promise<R>;
export function readDecideWrite<R>(plan: () => Promise<Plan<R>>, onCondition: 'stop'): Promise<R | typeof CONDITION_FAILED>;
export async function readDecideWrite<R>(plan: () => Promise<Plan<R>>, onCondition: 'again' | 'stop' = 'again'): Promise<R | typeof CONDITION_FAILED> {
  for (let contendedTries = 0; ; ) {
    const p = await plan();
    if (!p.write) return p.result;
    const outcome = await p.write();
    if (outcome === 'ok') return p.result;
    if (outcome === 'condition') {
      if (onCondition === 'stop') return CONDITION_FAILED;
      continue;
    }
    await contentionPause(++contendedTries);
  }
}
