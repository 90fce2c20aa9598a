/**
 * The deletes of an SQS queue, one at a time or held back and batched (SqsQueueProviderOptions
 * `deleteBatchMs`): a delete of a message that stays hidden a while longer only notes its receipt;
 * noted receipts go out in DeleteMessageBatch calls of up to 10 when ten are noted, at the latest
 * `deleteBatchMs` after the first (never later than half-way to the end of the message's
 * invisibility), and on `flush()`. A stale receipt is ignored, as SQS itself does for most.
 */
import { DeleteMessageBatchCommand, DeleteMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { isStaleReceipt, SQS_MAX_BATCH } from './task-queue-common.js';

/** A delete that could wait less than this is not worth holding back. */
const MIN_DELETE_WAIT_MS = 200;

export class SqsDeletes {
  /** Epoch ms until which a receipt of ours keeps its message hidden at least (batching only). */
  private readonly hiddenUntil = new Map<string, number>();
  private pending: string[] = [];
  private pendingDue = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly url: string,
    /** 0: every delete is one DeleteMessage, done before `delete` returns. */
    private readonly batchMs: number,
  ) {}

  /** The message of `receipt` stays hidden until at least `until` (epoch ms). */
  hidden(receipt: string, until: number): void {
    if (this.batchMs > 0) this.hiddenUntil.set(receipt, until);
  }

  /** Forget the receipts whose message is visible again by `now`. */
  expire(now: number): void {
    for (const [r, until] of this.hiddenUntil) if (until < now) this.hiddenUntil.delete(r);
  }

  /** The message may be visible now: a later delete of it is never held back. */
  forget(receipt: string): void {
    this.hiddenUntil.delete(receipt);
  }

  async delete(receipt: string): Promise<void> {
    const until = this.hiddenUntil.get(receipt);
    this.hiddenUntil.delete(receipt);
    const now = Date.now();
    const wait = until === undefined ? 0 : Math.min(this.batchMs, (until - now) / 2);
    if (wait < MIN_DELETE_WAIT_MS) {
      await this.deleteNow(receipt);
      return;
    }
    this.pending.push(receipt);
    this.pendingDue = Math.min(this.pendingDue, now + wait);
    if (this.pending.length >= SQS_MAX_BATCH) {
      this.sendPending();
    } else {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.sendPending(), Math.max(0, this.pendingDue - now));
      this.timer.unref();
    }
  }

  /** Send the deletes held back now, and wait for every batch in flight. */
  async flush(): Promise<void> {
    this.sendPending();
    await Promise.all([...this.sending]);
  }

  private async deleteNow(receipt: string): Promise<void> {
    try {
      await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receipt }));
    } catch (err) {
      if (!isStaleReceipt(err)) throw err;
    }
  }

  private sendPending(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pendingDue = Infinity;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, SQS_MAX_BATCH);
      const p = this.deleteBatch(batch).finally(() => this.sending.delete(p));
      this.sending.add(p);
    }
  }

  /**
   * One DeleteMessageBatch. Entries refused as the sender's fault (stale receipts) are ignored, as
   * `delete` ignores them; others are deleted one by one. Nothing is thrown: a message whose delete
   * did not get through comes back as a delivery of a finished task, which the status store's
   * claim answers with `done` (deleted then).
   */
  private async deleteBatch(receipts: readonly string[]): Promise<void> {
    try {
      const out = await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.url,
          Entries: receipts.map((r, i) => ({ Id: String(i), ReceiptHandle: r })),
        }),
      );
      for (const f of out.Failed ?? []) {
        if (f.SenderFault) continue;
        const r = receipts[Number(f.Id)];
        if (r !== undefined) await this.deleteNow(r).catch(() => undefined);
      }
    } catch {
      // See above: the messages come back and are deleted then.
    }
  }
}
