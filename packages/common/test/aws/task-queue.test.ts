/** SqsQueueProvider on moto, beyond the contract: batching, attributes, dead letters, clean-up. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueueTagsCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
} from '@aws-sdk/client-sqs';
import { createCallCounter, type AwsClients } from '../../src/aws/clients.js';
import { SqsQueueProvider, type SqsQueue } from '../../src/aws/task-queue.js';
import { deadLetterQueueName, queueName } from '../../src/aws/names.js';
import { uniqueJob, sleep, eventually } from '../contract/util.js';
import { receiveN } from '../contract/queue.contract.js';
import { describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';


const TYPE = 'c5.xlarge';

describeAws('SqsQueueProvider (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  let queues: SqsQueueProvider;
  const counter = createCallCounter();

  beforeAll(async () => {
    moto = (await startMoto())!;
    clients = motoClients(moto.endpoint, counter.install);
    queues = new SqsQueueProvider(clients.sqs);
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  const url = async (name: string) => (await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;

  it('250 tasks go out in 25 SendMessageBatch calls and arrive once each as {"job","task"}', async () => {
    const job = uniqueJob('batch');
    const q = await queues.ensure(job, TYPE, { visibilitySeconds: 120, maxReceiveCount: 3 });
    counter.reset();
    await q.send(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(counter.counts()).toEqual({ 'SQS.SendMessageBatch': 25 });
    await eventually(async () => expect(await q.depth()).toEqual({ visible: 250, inFlight: 0, delayed: 0 }));

    const raw = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 1, VisibilityTimeout: 0 }));
    const body = JSON.parse(raw.Messages![0]!.Body!);
    expect(Object.keys(body).sort()).toEqual(['job', 'task']);
    expect(body.job).toBe(job);

    const got = await receiveN(q, 250, { visibilitySeconds: 120, timeoutMs: 30_000 });
    const tasks = got.map((m) => m.task).sort((a, b) => a - b);
    expect(new Set(tasks).size).toBe(250);
    expect(tasks[0]).toBe(1);
    expect(tasks[249]).toBe(250);
    await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 250, delayed: 0 }));
    await q.purge();
    await q.purge(); // a purge in progress counts as done
    await queues.remove(job, TYPE);
  });

  it('only the entries a batch reports as failed are sent again', async () => {
    const job = uniqueJob('partial');
    // Fault injection on our side of the wire: the first batch loses entries 3 and 7 before it is
    // sent, and its answer names them as failed (what SQS does for a throttled entry).
    const faulty = motoClients(moto.endpoint, counter.install);
    let first = true;
    faulty.sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'SendMessageBatchCommand' || !first) return next(args);
        first = false;
        const input = args.input as SendMessageBatchCommandInput;
        const dropped = input.Entries!.filter((e) => e.Id === '3' || e.Id === '7');
        input.Entries = input.Entries!.filter((e) => !dropped.includes(e));
        const out = await next(args);
        const o = out.output as SendMessageBatchCommandOutput;
        o.Failed = dropped.map((e) => ({ Id: e.Id!, Code: 'InternalError', SenderFault: false }));
        return out;
      },
      { step: 'initialize', name: 'dropTwo' },
    );
    try {
      const q = await new SqsQueueProvider(faulty.sqs).ensure(job, TYPE, { visibilitySeconds: 120, maxReceiveCount: 3 });
      counter.reset();
      await q.send(Array.from({ length: 10 }, (_, i) => i + 1));
      expect(counter.counts()['SQS.SendMessageBatch']).toBe(2);
      const got = await receiveN(q, 10, { timeoutMs: 10_000 });
      expect(got.map((m) => m.task).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      await queues.remove(job, TYPE);
    } finally {
      faulty.destroy();
    }
  });

  it('queue pair: SSE, redrive to the dead-letter queue, visibility, tags; ensure is idempotent and updates', async () => {
    const job = uniqueJob('attrs');
    await queues.ensure(job, TYPE, { visibilitySeconds: 90, maxReceiveCount: 4 });
    const main = await url(queueName(job, TYPE));
    const dlq = await url(deadLetterQueueName(job, TYPE));
    expect(main).toMatch(/gq-ct-attrs-[^/]*-c5_xlarge$/);
    const a = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: main, AttributeNames: ['All'] }))).Attributes!;
    const d = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['All'] }))).Attributes!;
    expect(a.SqsManagedSseEnabled).toBe('true');
    expect(d.SqsManagedSseEnabled).toBe('true');
    expect(a.VisibilityTimeout).toBe('90');
    // The longest retention SQS allows, on both queues (a task may wait that long).
    expect([a.MessageRetentionPeriod, d.MessageRetentionPeriod]).toEqual(['1209600', '1209600']);
    expect(JSON.parse(a.RedrivePolicy!)).toEqual({ deadLetterTargetArn: d.QueueArn, maxReceiveCount: 4 });
    const tags = (await clients.sqs.send(new ListQueueTagsCommand({ QueueUrl: main }))).Tags;
    expect(tags).toMatchObject({ 'gq:job': job, 'gq:instance-type': TYPE });

    // Same settings: nothing changes; other settings: applied to the existing queue.
    await queues.ensure(job, TYPE, { visibilitySeconds: 90, maxReceiveCount: 4 });
    await queues.ensure(job, TYPE, { visibilitySeconds: 600, maxReceiveCount: 2 });
    const b = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: main, AttributeNames: ['All'] }))).Attributes!;
    expect(b.VisibilityTimeout).toBe('600');
    expect(JSON.parse(b.RedrivePolicy!).maxReceiveCount).toBe(2);
    expect(await url(queueName(job, TYPE))).toBe(main);
    await queues.remove(job, TYPE);
  });

  it('retention is configurable within what SQS allows (60 s to 14 days); anything else is refused', async () => {
    const job = uniqueJob('ret');
    await new SqsQueueProvider(clients.sqs, { retentionSeconds: 60 }).ensure(job, TYPE, { visibilitySeconds: 30, maxReceiveCount: 3 });
    const a = (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await url(queueName(job, TYPE)), AttributeNames: ['MessageRetentionPeriod'] }))).Attributes!;
    expect(a.MessageRetentionPeriod).toBe('60');
    await queues.remove(job, TYPE);
    for (const bad of [59, 1_209_601, 90.5]) expect(() => new SqsQueueProvider(clients.sqs, { retentionSeconds: bad })).toThrow(/queue retention must be/);
  });

  it('dead letters: listed without being consumed, sorted; depth of the dead-letter queue', async () => {
    const job = uniqueJob('dlq');
    const q: SqsQueue = await queues.ensure(job, TYPE, { visibilitySeconds: 1, maxReceiveCount: 1 });
    await q.send([5, 3, 9]);
    await receiveN(q, 3, { visibilitySeconds: 1 });
    await sleep(1200);
    // The next receive moves them to the dead-letter queue.
    expect(await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 1 })).toEqual([]);
    await eventually(async () => expect(await q.deadLetters()).toEqual([3, 5, 9]));
    // Looking does not take them away.
    expect(await q.deadLetters()).toEqual([3, 5, 9]);
    await eventually(async () => expect(await q.deadLetters()).toEqual([3, 5, 9]));
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    await queues.remove(job, TYPE);
  });

  it('a message that is not a task of this job is dropped, not delivered', async () => {
    const job = uniqueJob('stray');
    const q = await queues.ensure(job, TYPE, { visibilitySeconds: 30, maxReceiveCount: 3 });
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'hello' }));
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: JSON.stringify({ job: 'other', task: 1 }) }));
    await q.send([2]);
    const got = await receiveN(q, 1);
    expect(got.map((m) => m.task)).toEqual([2]);
    await sleep(200);
    expect(await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 })).toEqual([]);
    await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 1, delayed: 0 }));
    await queues.remove(job, TYPE);
  });

  it('remove deletes both queues; open then fails with QueueNotFoundError; remove again is fine', async () => {
    const job = uniqueJob('remove');
    await queues.ensure(job, TYPE, { visibilitySeconds: 30, maxReceiveCount: 3 });
    const agent = new SqsQueueProvider(clients.sqs); // another process: its own URL cache
    await agent.open(job, TYPE);
    await queues.remove(job, TYPE);
    await expect(clients.sqs.send(new GetQueueUrlCommand({ QueueName: queueName(job, TYPE) }))).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
    });
    await expect(clients.sqs.send(new GetQueueUrlCommand({ QueueName: deadLetterQueueName(job, TYPE) }))).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
    });
    await expect(queues.open(job, TYPE)).rejects.toMatchObject({ name: 'QueueNotFoundError' });
    await queues.remove(job, TYPE);
    await agent.remove(job, TYPE); // stale cached URL: still fine
  });

  it('a stale receipt (the message was received again): extend → ReceiptInvalidError, delete does not throw', async () => {
    const job = uniqueJob('stale');
    const q = await queues.ensure(job, TYPE, { visibilitySeconds: 1, maxReceiveCount: 5 });
    await q.send([4]);
    const [old] = await receiveN(q, 1, { visibilitySeconds: 1 });
    await sleep(1200);
    const [cur] = await receiveN(q, 1, { visibilitySeconds: 30 });
    expect(cur!.receiveCount).toBe(2);
    await expect(q.extend(old!.receipt, 30)).rejects.toMatchObject({ name: 'ReceiptInvalidError' });
    await expect(q.release(old!.receipt)).rejects.toMatchObject({ name: 'ReceiptInvalidError' });
    await expect(q.extend('not-a-receipt', 30)).rejects.toMatchObject({ name: 'ReceiptInvalidError' });
    await q.extend(cur!.receipt, 30);
    await q.delete(old!.receipt); // SQS: succeeds; the message might or might not go
    await q.delete(cur!.receipt);
    await q.delete(cur!.receipt); // twice: fine
    await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
    await queues.remove(job, TYPE);
  });

  // An extend never asks for more than is left of the message's 12 hours (SQS refuses it): the
  // arithmetic is visibilityLeft's, unit-tested in sqs-visibility.test.ts (12 hours do not pass here).
  it('receive clamps its arguments to SQS limits (unclamped, the strict layer refuses them); the delivery then extends and releases', async () => {
    const job = uniqueJob('clamp');
    const q = await queues.ensure(job, TYPE, { visibilitySeconds: 30, maxReceiveCount: 3 });
    await q.send([1]);
    const [m] = await q.receive({ max: 50, waitSeconds: 2, visibilitySeconds: 100_000 });
    expect(m).toMatchObject({ task: 1, receiveCount: 1 });
    await q.extend(m!.receipt, 10);
    await q.release(m!.receipt);
    const [again] = await receiveN(q, 1);
    expect(again!.receiveCount).toBe(2);
    await q.delete(again!.receipt);
    await queues.remove(job, TYPE);
  });

  it('deleteBatchMs: deletes of finished messages go out 10 to a DeleteMessageBatch, the rest on time or on flush', async () => {
    const job = uniqueJob('delbatch');
    await queues.ensure(job, TYPE, { visibilitySeconds: 60, maxReceiveCount: 3 });
    // The agent's side: its own provider object, deletes held back at most 1.5 s.
    const agent = new SqsQueueProvider(clients.sqs, { deleteBatchMs: 1500 });
    const q = await agent.open(job, TYPE);
    await q.send(Array.from({ length: 13 }, (_, i) => i + 1));
    const got = await receiveN(q, 13, { visibilitySeconds: 60 });
    counter.reset();
    for (const m of got) await q.delete(m.receipt); // returns at once: nothing sent for 10 of them... yet
    expect(counter.counts()).toEqual({ 'SQS.DeleteMessageBatch': 1 });
    // The other 3 go out by themselves within deleteBatchMs.
    await eventually(async () => expect(counter.counts()).toEqual({ 'SQS.DeleteMessageBatch': 2 }), 5000);
    await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));

    // flush() sends what is held back at once; a receipt this object did not receive, or one
    // released meanwhile, is deleted at once as before; a stale receipt is still no error.
    await q.send([20, 21, 22]);
    const [a, b, c] = await receiveN(q, 3, { visibilitySeconds: 60 });
    counter.reset();
    await q.delete(a!.receipt);
    expect(counter.counts()).toEqual({});
    await q.release(b!.receipt, 0);
    const [b2] = await receiveN(await queues.open(job, TYPE), 1, { visibilitySeconds: 60 });
    await q.delete(b!.receipt); // stale: released, received again by someone else
    await (await queues.open(job, TYPE)).delete(b2!.receipt);
    counter.reset();
    await q.delete(c!.receipt);
    await q.flush();
    expect(counter.counts()).toEqual({ 'SQS.DeleteMessageBatch': 1 });
    await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
    await q.flush(); // nothing held: nothing sent
    await queues.remove(job, TYPE);
  });

  it('deleteBatchMs: depth sends the deletes held back first, so a finished task is not counted in flight', async () => {
    const job = uniqueJob('deldepth');
    await queues.ensure(job, TYPE, { visibilitySeconds: 60, maxReceiveCount: 3 });
    const q = await new SqsQueueProvider(clients.sqs, { deleteBatchMs: 10_000 }).open(job, TYPE);
    await q.send([1, 2]);
    const got = await receiveN(q, 2, { visibilitySeconds: 60 });
    counter.reset();
    for (const m of got) await q.delete(m.receipt);
    expect(counter.counts()).toEqual({}); // held back, for up to 10 s
    // Asked at once (an idle worker deciding whether a task can come back): nothing in flight.
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(counter.counts()).toMatchObject({ 'SQS.DeleteMessageBatch': 1 });
    await queues.remove(job, TYPE);
  });

  it('deleteBatchMs: a message about to become visible again is deleted at once', async () => {
    const job = uniqueJob('delsoon');
    await queues.ensure(job, TYPE, { visibilitySeconds: 60, maxReceiveCount: 3 });
    const q = await new SqsQueueProvider(clients.sqs, { deleteBatchMs: 10_000 }).open(job, TYPE);
    await q.send([1]);
    const [m] = await receiveN(q, 1, { visibilitySeconds: 60 });
    await q.extend(m!.receipt, 0); // hidden no longer: nothing to gain by waiting
    counter.reset();
    await q.delete(m!.receipt);
    expect(counter.counts()).toEqual({ 'SQS.DeleteMessage': 1 });
    await queues.remove(job, TYPE);
  });
});
