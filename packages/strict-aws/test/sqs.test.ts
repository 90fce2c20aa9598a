/** Every SQS rule: fires on a request that breaks it, not on a valid one. */
import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, SQS_RULES as R, validateSqs } from '../src/sqs.js';
import type { Rule } from '../src/rules.js';

const Q = 'http://127.0.0.1/123456789012/q';
const entries = (n: number, f: (i: number) => Record<string, unknown> = () => ({})) =>
  Array.from({ length: n }, (_, i) => ({ Id: String(i), MessageBody: `{"task":${i}}`, ...f(i) }));
const attrs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: 'v' }]));

interface Case {
  rule: Rule;
  op: string;
  bad: Record<string, unknown>;
  good: Record<string, unknown>;
  message?: RegExp;
}

const cases: Case[] = [
  {
    rule: R.batchTooMany, op: 'SendMessageBatch', message: /^Maximum number of entries per request are 10\. You have sent 11\.$/,
    bad: { QueueUrl: Q, Entries: entries(11) }, good: { QueueUrl: Q, Entries: entries(10) },
  },
  { rule: R.batchEmpty, op: 'DeleteMessageBatch', bad: { QueueUrl: Q, Entries: [] }, good: { QueueUrl: Q, Entries: [{ Id: 'a', ReceiptHandle: 'r' }] } },
  {
    rule: R.batchIdsNotDistinct, op: 'ChangeMessageVisibilityBatch', message: /^Id x repeated\.$/,
    bad: { QueueUrl: Q, Entries: [{ Id: 'x', ReceiptHandle: 'a', VisibilityTimeout: 0 }, { Id: 'x', ReceiptHandle: 'b', VisibilityTimeout: 0 }] },
    good: { QueueUrl: Q, Entries: [{ Id: 'x', ReceiptHandle: 'a', VisibilityTimeout: 0 }, { Id: 'y', ReceiptHandle: 'b', VisibilityTimeout: 0 }] },
  },
  {
    rule: R.batchIdInvalid, op: 'SendMessageBatch',
    bad: { QueueUrl: Q, Entries: [{ Id: 'a.b', MessageBody: 'x' }] }, good: { QueueUrl: Q, Entries: [{ Id: 'a_b-1', MessageBody: 'x' }] },
  },
  {
    rule: R.batchTooLong, op: 'SendMessageBatch', message: /^Batch requests cannot be longer than 1048576 bytes/,
    bad: { QueueUrl: Q, Entries: entries(2, () => ({ MessageBody: 'x'.repeat(MAX_MESSAGE_BYTES / 2 + 1) })) },
    good: { QueueUrl: Q, Entries: entries(2, () => ({ MessageBody: 'x'.repeat(MAX_MESSAGE_BYTES / 2) })) },
  },
  {
    rule: R.messageTooLong, op: 'SendMessage', message: /Message must be shorter than 1048576 bytes/,
    bad: { QueueUrl: Q, MessageBody: 'x'.repeat(MAX_MESSAGE_BYTES - 3), MessageAttributes: { ab: { DataType: 'String', StringValue: 'v' } } },
    good: { QueueUrl: Q, MessageBody: 'x'.repeat(MAX_MESSAGE_BYTES) },
  },
  {
    rule: R.tooManyAttributes, op: 'SendMessage', message: /^Number of message attributes \[11\] exceeds the allowed maximum \[10\]\.$/,
    bad: { QueueUrl: Q, MessageBody: 'x', MessageAttributes: attrs(11) }, good: { QueueUrl: Q, MessageBody: 'x', MessageAttributes: attrs(10) },
  },
  { rule: R.delayRange, op: 'SendMessage', bad: { QueueUrl: Q, MessageBody: 'x', DelaySeconds: 901 }, good: { QueueUrl: Q, MessageBody: 'x', DelaySeconds: 900 } },
  {
    rule: R.visibilityRange, op: 'ChangeMessageVisibility', message: /^Value 43201 for parameter VisibilityTimeout is invalid/,
    bad: { QueueUrl: Q, ReceiptHandle: 'r', VisibilityTimeout: 43_201 }, good: { QueueUrl: Q, ReceiptHandle: 'r', VisibilityTimeout: 43_200 },
  },
  { rule: R.waitRange, op: 'ReceiveMessage', bad: { QueueUrl: Q, WaitTimeSeconds: 21 }, good: { QueueUrl: Q, WaitTimeSeconds: 20 } },
  { rule: R.maxMessagesRange, op: 'ReceiveMessage', bad: { QueueUrl: Q, MaxNumberOfMessages: 11 }, good: { QueueUrl: Q, MaxNumberOfMessages: 10 } },
  { rule: R.queueName, op: 'CreateQueue', bad: { QueueName: `gq-${'a'.repeat(78)}` }, good: { QueueName: `gq-${'a'.repeat(77)}` } },
  {
    rule: R.queueAttribute, op: 'CreateQueue',
    bad: { QueueName: 'q', Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: 'arn', maxReceiveCount: 1001 }) } },
    good: { QueueName: 'q', Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: 'arn', maxReceiveCount: 1000 }), MessageRetentionPeriod: '1209600' } },
  },
  { rule: R.tags, op: 'CreateQueue', bad: { QueueName: 'q', tags: { 'aws:x': '1' } }, good: { QueueName: 'q', tags: { 'gq:job': 'a' } } },
];

describe('SQS rules', () => {
  it.each(cases.map((c) => [c.rule.id, c] as const))('%s fires, and a valid request passes', (_id, c) => {
    const v = validateSqs(c.op, c.bad);
    expect(v?.rule.id).toBe(c.rule.id);
    if (c.message) expect(v?.message).toMatch(c.message);
    expect(validateSqs(c.op, c.good)).toBeUndefined();
  });

  it('has a case for every rule, each citing an AWS page', () => {
    expect(new Set(cases.map((c) => c.rule.id))).toEqual(new Set(Object.values(R).map((r) => r.id)));
    for (const r of Object.values(R)) expect(r.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
  });

  it('refuses FIFO names without .fifo, and tag keys over 128 characters (not a 51st tag: only advised against)', () => {
    expect(validateSqs('CreateQueue', { QueueName: 'q', Attributes: { FifoQueue: 'true' } })?.rule.id).toBe(R.queueName.id);
    expect(validateSqs('CreateQueue', { QueueName: 'q.fifo', Attributes: { FifoQueue: 'true' } })).toBeUndefined();
    expect(validateSqs('TagQueue', { QueueUrl: Q, Tags: { ['k'.repeat(129)]: 'v' } })?.rule.id).toBe(R.tags.id);
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    expect(validateSqs('TagQueue', { QueueUrl: Q, Tags: many })).toBeUndefined();
  });
});
