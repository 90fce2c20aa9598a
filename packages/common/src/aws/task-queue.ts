/**
 * TaskQueue on SQS: one standard queue per (job, instance type) with its dead-letter queue.
 *
 * Message body: {"job": "<job>", "task": <n>}. The command itself lives in the status store.
 * SQS is at-least-once (moto even delivers one message twice under concurrent receives): the
 * status store's conditional claim is what makes a task run once.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  QueueNameExists,
  PurgeQueueInProgress,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  type QueueAttributeName,
  type SQSClient,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import pLimit from 'p-limit';
import { backoffDelay } from '../backoff.js';
import { GqError } from '../errors.js';
import { QueueDeletedRecentlyError, QueueNotFoundError, ReceiptInvalidError } from '../port-errors.js';
import type { QueueDepth, QueueOptions, QueueProvider, ReceivedMessage, TaskQueue } from '../ports.js';
import { deadLetterQueueName, JOB_TAG, POOL_TAG, queueName, TYPE_TAG } from './names.js';
import type { Pool } from '../job/on-demand.js';
import { SqsDeletes } from './task-queue-deletes.js';
import {
  clamp,
  decodeBody,
  depthOf,
  encodeBody,
  isMissingQueue,
  isName,
  isStaleReceipt,
  SQS_MAX_BATCH,
  SQS_MAX_RETENTION_SECONDS,
  SQS_MAX_VISIBILITY_SECONDS,
  SQS_MAX_WAIT_SECONDS,
  SQS_MIN_RETENTION_SECONDS,
  visibilityLeft,
} from './task-queue-common.js';

export interface SqsQueueProviderOptions {
  /** SendMessageBatch calls in flight at once per `send`. Default 8. */
  sendConcurrency?: number;
  /** Rounds of re-sending the entries a batch reported as failed. Default 5. */
  maxBatchRounds?: number;
  /** Messages `deadLetters` looks at, at most. Default 1,000. */
  maxDeadLetterPeek?: number;
  /** Extra tags for the queues. */
  tags?: Record<string, string>;
  /**
   * Batch the deletes (the agent's side: one delete per finished task). When above 0, `delete` of
   * a message that this queue object received and that stays hidden a while longer only notes its
   * receipt and returns at once; noted receipts go out in DeleteMessageBatch calls of up to 10 when
   * ten are noted, at the latest this many ms after the first (and never later than half-way to
   * the end of the message's invisibility), and on `flush()`. A noted delete that never goes out
   * (the process died) only lets the message come back after its visibility timeout, as a delivery
   * of a finished task, which the status store's claim answers with `done` (deleted then).
   * Default 0: every delete is one DeleteMessage, done before `delete` returns.
   */
  deleteBatchMs?: number;
  /** MessageRetentionPeriod of the queues gq creates, seconds. Default (and maximum) 14 days. */
  retentionSeconds?: number;
}

export class SqsQueue implements TaskQueue {
  private readonly deletes: SqsDeletes;
  /** When each receipt this queue object holds was received (before the call): extend's 12-hour limit. */
  private readonly receivedAt = new Map<string, number>();

  constructor(
    private readonly sqs: SQSClient,
    readonly job: string,
    readonly instanceType: string,
    readonly url: string,
    private readonly dlqUrl: () => Promise<string | undefined>,
    private readonly opts: Required<Omit<SqsQueueProviderOptions, 'tags'>>,
    readonly pool: Pool = 'main',
  ) {
    this.deletes = new SqsDeletes(sqs, url, opts.deleteBatchMs);
  }

  async send(tasks: readonly number[]): Promise<void> {
    const limit = pLimit(this.opts.sendConcurrency);
    const batches: number[][] = [];
    for (let i = 0; i < tasks.length; i += SQS_MAX_BATCH) batches.push(tasks.slice(i, i + SQS_MAX_BATCH));
    await Promise.all(batches.map((b) => limit(() => this.sendBatch(b))));
  }

  /**
   * One SendMessageBatch, then again with only the entries it reported as failed (the batch API's
   * per-entry result, not a transport error: those the SDK retries itself). Bounded rounds;
   * sender faults are not re-sent.
   */
  private async sendBatch(tasks: readonly number[]): Promise<void> {
    let entries: SendMessageBatchRequestEntry[] = tasks.map((t, i) => ({ Id: String(i), MessageBody: encodeBody(this.job, t) }));
    for (let round = 1; entries.length > 0; round++) {
      const out = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.url, Entries: entries })).catch(this.gone);
      const failed = out.Failed ?? [];
      if (failed.length === 0) return;
      const fatal = failed.filter((f) => f.SenderFault);
      if (fatal.length > 0 || round >= this.opts.maxBatchRounds) {
        const f = fatal[0] ?? failed[0]!;
        throw new GqError(
          `SQS refused ${failed.length} message(s) for job ${this.job} (${this.instanceType}): ${f.Code}${f.Message ? ` ${f.Message}` : ''}`,
        );
      }
      const ids = new Set(failed.map((f) => f.Id));
      entries = entries.filter((e) => ids.has(e.Id));
      await new Promise((r) => setTimeout(r, backoffDelay(round + 1, 100, 5000)));
    }
  }

  async receive(opts: { max: number; waitSeconds: number; visibilitySeconds: number }): Promise<ReceivedMessage[]> {
    // Before the call: the invisibility of what it returns starts later than this.
    const sentAt = Date.now();
    this.deletes.expire(sentAt);
    const out = await this.sqs
      .send(
        new ReceiveMessageCommand({
          QueueUrl: this.url,
          MaxNumberOfMessages: clamp(opts.max, 1, SQS_MAX_BATCH),
          WaitTimeSeconds: clamp(opts.waitSeconds, 0, SQS_MAX_WAIT_SECONDS),
          VisibilityTimeout: clamp(opts.visibilitySeconds, 0, SQS_MAX_VISIBILITY_SECONDS),
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      )
      .catch(this.gone);
    const result: ReceivedMessage[] = [];
    for (const m of out.Messages ?? []) {
      if (!m.ReceiptHandle) continue;
      const task = decodeBody(this.job, m.Body);
      if (task === undefined) {
        // Not a gq message of this job: drop it rather than let it cycle to the dead letters.
        await this.delete(m.ReceiptHandle);
        continue;
      }
      result.push({ task, receipt: m.ReceiptHandle, receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1) });
      this.receivedAt.set(m.ReceiptHandle, sentAt);
      this.deletes.hidden(m.ReceiptHandle, sentAt + clamp(opts.visibilitySeconds, 0, SQS_MAX_VISIBILITY_SECONDS) * 1000);
    }
    return result;
  }

  /** A receipt that is no longer the message's current delivery throws ReceiptInvalidError. */
  async extend(receipt: string, seconds: number): Promise<void> {
    const sentAt = Date.now();
    const received = this.receivedAt.get(receipt);
    const timeout = received === undefined ? clamp(seconds, 0, SQS_MAX_VISIBILITY_SECONDS) : visibilityLeft(received, sentAt, seconds);
    // Nothing left of the 12 hours: the message shows again at their end (a worker that receives
    // it sees the task held and hides it again), and SQS would refuse any longer timeout.
    if (timeout === undefined) return;
    try {
      await this.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.url,
          ReceiptHandle: receipt,
          VisibilityTimeout: timeout,
        }),
      );
    } catch (err) {
      this.deletes.forget(receipt);
      if (isStaleReceipt(err)) throw new ReceiptInvalidError(receipt);
      throw err;
    }
    this.deletes.hidden(receipt, sentAt + timeout * 1000);
  }

  async release(receipt: string, delaySeconds = 0): Promise<void> {
    await this.extend(receipt, delaySeconds);
    // Visible again (or soon): a later delete of it is never held back.
    this.deletes.forget(receipt);
    this.receivedAt.delete(receipt);
  }

  /**
   * A stale receipt is ignored (as SQS itself does for most of them). With `deleteBatchMs`, the
   * delete of a message that stays hidden a while may be held back and batched (see the option).
   */
  async delete(receipt: string): Promise<void> {
    this.receivedAt.delete(receipt);
    await this.deletes.delete(receipt);
  }

  /** Send the deletes held back (`deleteBatchMs`) now, and wait for every batch in flight. */
  async flush(): Promise<void> {
    await this.deletes.flush();
  }

  /**
   * The deletes held back (`deleteBatchMs`) go out first: their tasks are finished, and counted as
   * in flight they looked like tasks that can come back, so the last idle worker stayed another
   * idle period for its own finished tasks (agent idle-leave.ts; bench/fleet showed it).
   */
  async depth(): Promise<QueueDepth> {
    await this.deletes.flush();
    return depthOf(this.sqs, this.url).catch(this.gone);
  }

  /** Rethrow an SQS error; a deleted queue (the job was cleaned) as the local queue's QueueNotFoundError. */
  private readonly gone = (err: unknown): never => {
    if (isMissingQueue(err)) throw new QueueNotFoundError(this.job, this.instanceType);
    throw err;
  };

  /**
   * Task numbers of the messages in the dead-letter queue, sorted, without removing them.
   *
   * SQS has no true peek, and a receive with visibility 0 returns a random sample each time, so
   * this receives with a short visibility (30 s) until the queue yields nothing new (bounded by
   * `maxDeadLetterPeek` messages and by the queue's approximate size), then makes every message
   * it saw visible again. A second caller during those 30 s sees fewer messages; a dead-letter
   * queue holding more than `maxDeadLetterPeek` messages is reported partially (use `depth` of
   * the dead-letter queue for the count). The status store, not this list, is the authority on
   * which tasks failed.
   */
  async deadLetters(): Promise<number[]> {
    const url = await this.dlqUrl();
    if (!url) return [];
    const approx = await depthOf(this.sqs, url);
    const expected = Math.min(approx.visible + approx.inFlight + approx.delayed, this.opts.maxDeadLetterPeek);
    if (expected === 0) return [];
    const tasks = new Set<number>();
    const receipts: string[] = [];
    let seen = 0;
    let emptyRounds = 0;
    const maxRounds = Math.ceil(this.opts.maxDeadLetterPeek / SQS_MAX_BATCH) + 5;
    for (let round = 0; round < maxRounds && seen < expected && emptyRounds < 2; round++) {
      const out = await this.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: SQS_MAX_BATCH, WaitTimeSeconds: 1, VisibilityTimeout: 30 }),
      );
      const msgs = out.Messages ?? [];
      if (msgs.length === 0) emptyRounds++;
      for (const m of msgs) {
        seen++;
        if (m.ReceiptHandle) receipts.push(m.ReceiptHandle);
        const t = decodeBody(this.job, m.Body);
        if (t !== undefined) tasks.add(t);
      }
    }
    // Put them back at once (best effort: they reappear after 30 s anyway).
    for (let i = 0; i < receipts.length; i += SQS_MAX_BATCH) {
      const chunk = receipts.slice(i, i + SQS_MAX_BATCH);
      await this.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: url,
          Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r, VisibilityTimeout: 0 })),
        }),
      );
    }
    return [...tasks].sort((a, b) => a - b);
  }

  /**
   * Drop every message. SQS allows one PurgeQueue per queue per 60 s; a purge already in
   * progress drops the same messages, so PurgeQueueInProgress counts as done.
   */
  async purge(): Promise<void> {
    try {
      await this.sqs.send(new PurgeQueueCommand({ QueueUrl: this.url }));
    } catch (err) {
      if (err instanceof PurgeQueueInProgress || isName(err, 'PurgeQueueInProgress')) return;
      throw err;
    }
  }
}

export class SqsQueueProvider implements QueueProvider {
  private readonly urls = new Map<string, Promise<string | undefined>>();
  private readonly opts: Required<Omit<SqsQueueProviderOptions, 'tags'>>;
  private readonly tags: Record<string, string>;

  constructor(
    private readonly sqs: SQSClient,
    options: SqsQueueProviderOptions = {},
  ) {
    this.opts = {
      sendConcurrency: options.sendConcurrency ?? 8,
      maxBatchRounds: options.maxBatchRounds ?? 5,
      maxDeadLetterPeek: options.maxDeadLetterPeek ?? 1000,
      deleteBatchMs: Math.max(0, options.deleteBatchMs ?? 0),
      retentionSeconds: options.retentionSeconds ?? SQS_MAX_RETENTION_SECONDS,
    };
    const r = this.opts.retentionSeconds;
    if (!Number.isInteger(r) || r < SQS_MIN_RETENTION_SECONDS || r > SQS_MAX_RETENTION_SECONDS) {
      throw new GqError(`queue retention must be a whole number of seconds from ${SQS_MIN_RETENTION_SECONDS} to ${SQS_MAX_RETENTION_SECONDS}, not ${r}`);
    }
    this.tags = options.tags ?? {};
  }

  /** Queue URL by name, cached; undefined when the queue does not exist (not cached). */
  private url(name: string): Promise<string | undefined> {
    let p = this.urls.get(name);
    if (!p) {
      p = this.sqs.send(new GetQueueUrlCommand({ QueueName: name })).then(
        (o) => o.QueueUrl,
        (err: unknown) => {
          if (isMissingQueue(err)) return undefined;
          throw err;
        },
      );
      p.then(
        (u) => u === undefined && this.urls.delete(name),
        () => this.urls.delete(name),
      );
      this.urls.set(name, p);
    }
    return p;
  }

  /** CreateQueue, idempotent; a queue that exists with other attributes gets them set. */
  private async createQueue(name: string, attributes: Partial<Record<QueueAttributeName, string>>, tags: Record<string, string>): Promise<string> {
    try {
      const out = await this.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes, tags }));
      if (!out.QueueUrl) throw new GqError(`CreateQueue ${name} returned no URL`);
      this.urls.set(name, Promise.resolve(out.QueueUrl));
      return out.QueueUrl;
    } catch (err) {
      if (isName(err, 'QueueDeletedRecently')) {
        throw new QueueDeletedRecentlyError(name, err);
      }
      if (!(err instanceof QueueNameExists || isName(err, 'QueueNameExists', 'QueueAlreadyExists'))) throw err;
      const url = await this.url(name);
      if (!url) throw new GqError(`queue ${name} exists and does not exist`, { cause: err });
      await this.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
      return url;
    }
  }

  private make(job: string, instanceType: string, url: string, pool: Pool): SqsQueue {
    const dlqName = deadLetterQueueName(job, instanceType, pool);
    return new SqsQueue(this.sqs, job, instanceType, url, () => this.url(dlqName), this.opts, pool);
  }

  async ensure(job: string, instanceType: string, opts: QueueOptions, pool: Pool = 'main'): Promise<SqsQueue> {
    const tags = { ...this.tags, [JOB_TAG]: job, [TYPE_TAG]: instanceType, ...(pool === 'main' ? {} : { [POOL_TAG]: pool }) };
    const common = { SqsManagedSseEnabled: 'true', MessageRetentionPeriod: String(this.opts.retentionSeconds) };
    const dlqUrl = await this.createQueue(deadLetterQueueName(job, instanceType, pool), common, tags);
    const arn = (await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes
      ?.QueueArn;
    if (!arn) throw new GqError(`no ARN for the dead-letter queue of ${job} (${instanceType})`);
    const url = await this.createQueue(
      queueName(job, instanceType, pool),
      {
        ...common,
        VisibilityTimeout: String(clamp(opts.visibilitySeconds, 0, SQS_MAX_VISIBILITY_SECONDS)),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: clamp(opts.maxReceiveCount, 1, 1000) }),
      },
      tags,
    );
    return this.make(job, instanceType, url, pool);
  }

  async open(job: string, instanceType: string, pool: Pool = 'main'): Promise<SqsQueue> {
    const url = await this.url(queueName(job, instanceType, pool));
    if (!url) throw new QueueNotFoundError(job, instanceType);
    return this.make(job, instanceType, url, pool);
  }

  async remove(job: string, instanceType: string, pool: Pool = 'main'): Promise<void> {
    for (const name of [queueName(job, instanceType, pool), deadLetterQueueName(job, instanceType, pool)]) {
      const url = await this.url(name);
      this.urls.delete(name);
      if (!url) continue;
      try {
        await this.sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
      } catch (err) {
        if (!isMissingQueue(err)) throw err;
      }
    }
  }
}
