/**
 * What the SQS queue, its deletes and its provider share: SQS's limits, the message body of a
 * task, queue depth, and the SQS error names gq tells apart (by name, never by message text).
 */
import { GetQueueAttributesCommand, QueueDoesNotExist, type SQSClient } from '@aws-sdk/client-sqs';
import { MAX_VISIBILITY_SECONDS, type QueueDepth } from '../ports.js';

/** SQS limits. */
export const SQS_MAX_BATCH = 10;
export const SQS_MAX_WAIT_SECONDS = 20;
export const SQS_MAX_VISIBILITY_SECONDS = MAX_VISIBILITY_SECONDS;
/**
 * MessageRetentionPeriod bounds, seconds: 60 to 1,209,600 (14 days), AWS's SetQueueAttributes page
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html).
 * gq uses the maximum; a task QUEUED longer still loses its message, and the status store brings it
 * back (the idle worker that stays, agent idle-leave.ts, or a gq command's reconcile).
 */
export const SQS_MIN_RETENTION_SECONDS = 60;
export const SQS_MAX_RETENTION_SECONDS = 1_209_600;

export function isName(err: unknown, ...names: string[]): boolean {
  return typeof err === 'object' && err !== null && names.includes((err as { name?: string }).name ?? '');
}

/**
 * The visibility timeout an extend of a message received at `receivedAtMs` may ask for at `nowMs`:
 * SQS counts its 12 hours from the receive and rejects a ChangeMessageVisibility that would pass
 * them ("more than the maximum time left", API_ChangeMessageVisibility). `receivedAtMs` is taken
 * before the ReceiveMessage call, so the time left is never overestimated; one more second of margin
 * covers the clocks. Undefined when nothing is left to extend.
 */
export function visibilityLeft(receivedAtMs: number, nowMs: number, seconds: number): number | undefined {
  const left = SQS_MAX_VISIBILITY_SECONDS - Math.ceil((nowMs - receivedAtMs) / 1000) - 1;
  const want = clamp(seconds, 0, SQS_MAX_VISIBILITY_SECONDS);
  if (want === 0) return 0;
  return left <= 0 ? undefined : Math.min(want, left);
}

export const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.round(n)));

export function encodeBody(job: string, task: number): string {
  return JSON.stringify({ job, task });
}

/** The task number of a message body of `job`, or undefined for a stray message. */
export function decodeBody(job: string, body: string | undefined): number | undefined {
  if (!body) return undefined;
  try {
    const v = JSON.parse(body) as { job?: unknown; task?: unknown };
    if (v.job !== job || typeof v.task !== 'number' || !Number.isInteger(v.task) || v.task < 1) return undefined;
    return v.task;
  } catch {
    return undefined;
  }
}

export async function depthOf(sqs: SQSClient, url: string): Promise<QueueDepth> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  const a = out.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/**
 * SQS's answers to a receipt that is not the current delivery: ReceiptHandleIsInvalid (malformed
 * or unknown), MessageNotInflight (visible again), InvalidParameterValue (expired handle; SQS has
 * no more specific code for it).
 */
export function isStaleReceipt(err: unknown): boolean {
  return isName(err, 'ReceiptHandleIsInvalid', 'MessageNotInflight', 'InvalidParameterValue', 'AWS.SimpleQueueService.MessageNotInflight');
}

export function isMissingQueue(err: unknown): boolean {
  return err instanceof QueueDoesNotExist || isName(err, 'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue');
}
