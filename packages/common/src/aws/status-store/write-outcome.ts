/**
 * How a conditional write to the status table ended, as a typed outcome: the store decides what
 * to do next from it (read again, pause and write again, or throw), never from an error's text.
 */
import { ConditionalCheckFailedException, TransactionCanceledException, type CancellationReason } from '@aws-sdk/client-dynamodb';

/**
 * How a conditional write ended: `condition` (the item is not what was read), `conflict` (another
 * transaction was in flight on an item: TransactionConflict), `throttle` (an item or the table
 * over its throughput).
 */
export type WriteOutcome = 'ok' | 'condition' | 'conflict' | 'throttle';

/** Error names of a throttled request (single-item operations; the SDK's own retries exhausted). */
const THROTTLE_NAMES = new Set(['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded']);
/** Cancellation reason codes of a throttled transaction (API_TransactWriteItems.html, CancellationReason). */
const THROTTLE_REASONS = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded']);

/** The cancellation reasons of a cancelled transaction (one per item, in order), else undefined. */
export function reasonsOf(err: unknown): CancellationReason[] | undefined {
  if (err instanceof TransactionCanceledException || (err as { name?: string })?.name === 'TransactionCanceledException') {
    return (err as TransactionCanceledException).CancellationReasons ?? [];
  }
  return undefined;
}

/** Whether item `i` of a cancelled transaction failed its condition. */
export function conditionFailedAt(err: unknown, i: number): boolean {
  return reasonsOf(err)?.[i]?.Code === 'ConditionalCheckFailed';
}

/**
 * The outcome of a failed conditional write, or undefined when the error is something else (to
 * be thrown). Uses error names and cancellation reason codes, never message text.
 */
export function classifyWriteError(err: unknown): Exclude<WriteOutcome, 'ok'> | undefined {
  const name = (err as { name?: string })?.name;
  if (err instanceof ConditionalCheckFailedException || name === 'ConditionalCheckFailedException') {
    return 'condition';
  }
  // A single-item write that met an ongoing transaction on its item (transaction-apis.html,
  // "Transaction conflict handling"): not retried by the SDK.
  if (name === 'TransactionConflictException') return 'conflict';
  if (name && THROTTLE_NAMES.has(name)) return 'throttle';
  const reasons = reasonsOf(err);
  if (!reasons) return undefined;
  if (reasons.some((r) => r.Code === 'ConditionalCheckFailed')) return 'condition';
  if (reasons.some((r) => r.Code === 'TransactionConflict')) return 'conflict';
  if (reasons.some((r) => r.Code !== undefined && THROTTLE_REASONS.has(r.Code))) return 'throttle';
  return undefined;
}

/** Worth the same write again after a pause: a conflict or a throttle. */
export const contended = (o: WriteOutcome | undefined): boolean => o === 'conflict' || o === 'throttle';

/**
 * Send a conditional write and return its outcome; an error that is no write outcome is thrown.
 * `classify` may look closer first (which item of a transaction failed), returning an outcome or
 * undefined to throw the error.
 */
export async function sendWrite(
  send: () => Promise<unknown>,
  classify: (err: unknown, outcome: Exclude<WriteOutcome, 'ok'> | undefined) => WriteOutcome | undefined = (_e, o) => o,
): Promise<WriteOutcome> {
  try {
    await send();
    return 'ok';
  } catch (err) {
    const outcome = classify(err, classifyWriteError(err));
    if (!outcome) throw err;
    return outcome;
  }
}
