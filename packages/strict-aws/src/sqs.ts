/**
 * SQS. The current SDK (client-sqs 3.x) speaks the JSON 1.0 protocol (`X-Amz-Target:
 * AmazonSQS.<Operation>`, `awsQueryCompatible`): errors carry `__type` in the body and the
 * query-protocol code in `x-amzn-query-error` (which the SDK turns into the error's name).
 * Pure: `validateSqs(operation, body)`.
 */
import { defineRules, utf8Bytes, violation, type Violation } from './rules.js';

const GUIDE = 'https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide';
const API = 'https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference';
const IPV = { status: 400, code: 'InvalidParameterValue', queryCode: 'InvalidParameterValue' } as const;

export const SQS_RULES = defineRules('sqs', {
  batchTooMany: {
    id: 'sqs.batch-too-many', summary: 'a batch of more than 10 entries', doc: `${GUIDE}/quotas-messages.html`,
    status: 400, code: 'TooManyEntriesInBatchRequest', queryCode: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
  },
  batchEmpty: {
    id: 'sqs.batch-empty', summary: 'a batch without entries', doc: `${API}/API_SendMessageBatch.html`,
    status: 400, code: 'EmptyBatchRequest', queryCode: 'AWS.SimpleQueueService.EmptyBatchRequest',
  },
  batchIdsNotDistinct: {
    id: 'sqs.batch-ids-not-distinct', summary: 'two batch entries with one Id', doc: `${API}/API_SendMessageBatch.html`,
    status: 400, code: 'BatchEntryIdsNotDistinct', queryCode: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
  },
  batchIdInvalid: {
    id: 'sqs.batch-id-invalid', summary: 'a batch entry Id over 80 characters or not of [A-Za-z0-9_-]', doc: `${GUIDE}/quotas-messages.html`,
    status: 400, code: 'InvalidBatchEntryId', queryCode: 'AWS.SimpleQueueService.InvalidBatchEntryId',
  },
  batchTooLong: {
    id: 'sqs.batch-too-long', summary: 'a SendMessageBatch over 1 MiB in total', doc: `${GUIDE}/sqs-batch-api.html`,
    status: 400, code: 'BatchRequestTooLong', queryCode: 'AWS.SimpleQueueService.BatchRequestTooLong',
  },
  messageTooLong: { id: 'sqs.message-too-long', summary: 'a message over 1 MiB (body and attributes)', doc: `${API}/API_SendMessage.html`, ...IPV },
  tooManyAttributes: { id: 'sqs.too-many-attributes', summary: 'a message with more than 10 attributes', doc: `${GUIDE}/quotas-messages.html`, ...IPV },
  delayRange: { id: 'sqs.delay-range', summary: 'DelaySeconds outside 0..900', doc: `${API}/API_SendMessage.html`, ...IPV },
  visibilityRange: { id: 'sqs.visibility-range', summary: 'VisibilityTimeout outside 0..43200 (12 hours)', doc: `${API}/API_ChangeMessageVisibility.html`, ...IPV },
  waitRange: { id: 'sqs.wait-range', summary: 'WaitTimeSeconds outside 0..20', doc: `${API}/API_ReceiveMessage.html`, ...IPV },
  maxMessagesRange: { id: 'sqs.max-messages-range', summary: 'MaxNumberOfMessages outside 1..10', doc: `${API}/API_ReceiveMessage.html`, ...IPV },
  queueName: { id: 'sqs.queue-name', summary: 'a queue name not of 1-80 [A-Za-z0-9_-] (+ .fifo for FIFO queues)', doc: `${GUIDE}/quotas-queues.html`, ...IPV },
  queueAttribute: {
    id: 'sqs.queue-attribute', summary: 'a queue attribute outside its documented range', doc: `${API}/API_SetQueueAttributes.html`,
    status: 400, code: 'InvalidAttributeValue', queryCode: 'InvalidAttributeValue',
  },
  // quotas-queues only advises against more than 50 tags, so their number is not checked.
  tags: { id: 'sqs.tags', summary: 'a tag key empty or over 128, a value over 256 characters, or an aws: key', doc: `${GUIDE}/quotas-queues.html`, ...IPV },
});
const R = SQS_RULES;

/** Message and SendMessageBatch maximum: 1 MiB (raised from 256 KiB in 2025; see API_SendMessage). */
export const MAX_MESSAGE_BYTES = 1_048_576;
export const MAX_BATCH_ENTRIES = 10;
export const MAX_MESSAGE_ATTRIBUTES = 10;
// strict-aws models AWS on its own and does not import gq's code, so it keeps its own copy of the
// 12-hour limit (gq's is MAX_VISIBILITY_SECONDS in packages/common/src/ports.ts).
export const MAX_VISIBILITY_SECONDS = 43_200;
export const MAX_WAIT_SECONDS = 20;
export const MAX_DELAY_SECONDS = 900;

type Body = Record<string, unknown>;
interface Attribute {
  DataType?: string;
  StringValue?: string;
  BinaryValue?: string;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function range(rule: typeof R.delayRange, name: string, v: unknown, lo: number, hi: number, reason: string): Violation | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isInt(v) || v < lo || v > hi) return violation(rule, `Value ${String(v)} for parameter ${name} is invalid. Reason: ${reason}`);
  return undefined;
}

/** SQS's size of a message: body plus each attribute's name, type and value. */
export function messageSize(body: string, attributes: Record<string, Attribute> = {}): number {
  let n = utf8Bytes(body);
  for (const [k, a] of Object.entries(attributes)) {
    n += utf8Bytes(k) + utf8Bytes(a.DataType ?? '');
    if (a.StringValue !== undefined) n += utf8Bytes(a.StringValue);
    if (a.BinaryValue !== undefined) n += Buffer.from(a.BinaryValue, 'base64').length;
  }
  return n;
}

function checkMessage(m: Body): Violation | undefined {
  const attrs = (m.MessageAttributes as Record<string, Attribute> | undefined) ?? {};
  const count = Object.keys(attrs).length;
  if (count > MAX_MESSAGE_ATTRIBUTES) {
    return violation(R.tooManyAttributes, `Number of message attributes [${count}] exceeds the allowed maximum [${MAX_MESSAGE_ATTRIBUTES}].`);
  }
  if (messageSize(String(m.MessageBody ?? ''), attrs) > MAX_MESSAGE_BYTES) {
    return violation(R.messageTooLong, `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`);
  }
  return range(R.delayRange, 'DelaySeconds', m.DelaySeconds, 0, MAX_DELAY_SECONDS, `DelaySeconds must be >= 0 and <= ${MAX_DELAY_SECONDS}.`);
}

function checkEntries(operation: string, entries: Body[] | undefined): Violation | undefined {
  const list = entries ?? [];
  if (list.length === 0) return violation(R.batchEmpty, `There should be at least one ${operation}RequestEntry in the request.`);
  if (list.length > MAX_BATCH_ENTRIES) {
    return violation(R.batchTooMany, `Maximum number of entries per request are ${MAX_BATCH_ENTRIES}. You have sent ${list.length}.`);
  }
  const ids = new Set<string>();
  for (const e of list) {
    const id = String(e.Id ?? '');
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(id)) {
      return violation(R.batchIdInvalid, 'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
    }
    if (ids.has(id)) return violation(R.batchIdsNotDistinct, `Id ${id} repeated.`);
    ids.add(id);
  }
  return undefined;
}

const VIS_REASON = `Must be between 0 and ${MAX_VISIBILITY_SECONDS}, if provided.`;

function checkQueueName(name: string, attributes: Record<string, string>): Violation | undefined {
  const fifo = attributes.FifoQueue === 'true';
  const ok = fifo ? /^[A-Za-z0-9_-]{1,75}\.fifo$/.test(name) : /^[A-Za-z0-9_-]{1,80}$/.test(name);
  if (ok) return undefined;
  return violation(
    R.queueName,
    fifo
      ? 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.'
      : 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
  );
}

/** Documented ranges of queue attributes (API_SetQueueAttributes). */
const ATTRIBUTE_RANGES: Record<string, [number, number]> = {
  DelaySeconds: [0, 900],
  MaximumMessageSize: [1024, MAX_MESSAGE_BYTES],
  MessageRetentionPeriod: [60, 1_209_600],
  ReceiveMessageWaitTimeSeconds: [0, 20],
  VisibilityTimeout: [0, MAX_VISIBILITY_SECONDS],
};

function checkQueueAttributes(attributes: Record<string, string>): Violation | undefined {
  for (const [k, v] of Object.entries(attributes)) {
    const r = ATTRIBUTE_RANGES[k];
    if (r && !(/^\d+$/.test(v) && Number(v) >= r[0] && Number(v) <= r[1])) {
      return violation(R.queueAttribute, `Invalid value for the parameter ${k}.`);
    }
    if (k === 'RedrivePolicy') {
      let p: { maxReceiveCount?: unknown; deadLetterTargetArn?: unknown } | undefined;
      try {
        p = JSON.parse(v) as typeof p;
      } catch {
        return violation(R.queueAttribute, 'Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a valid JSON map.');
      }
      const n = Number(p?.maxReceiveCount);
      if (!Number.isInteger(n) || n < 1 || n > 1000) {
        return violation(R.queueAttribute, 'Value for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: must be an integer from 1 to 1000.');
      }
      if (typeof p?.deadLetterTargetArn !== 'string') {
        return violation(R.queueAttribute, 'Value for parameter RedrivePolicy is invalid. Reason: Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
      }
    }
  }
  return undefined;
}

function checkTags(tags: Record<string, string> | undefined): Violation | undefined {
  const entries = Object.entries(tags ?? {});
  for (const [k, v] of entries) {
    if (k.length < 1 || k.length > 128) return violation(R.tags, `Tag key ${k.slice(0, 20)}... must be 1 to 128 characters long.`);
    if (v.length > 256) return violation(R.tags, `Tag value of ${k} must be at most 256 characters long.`);
    if (/^aws:/i.test(k)) return violation(R.tags, `Tag keys must not start with "aws:" (reserved by AWS): ${k}`);
  }
  return undefined;
}

/** The first documented refusal of an SQS request, or undefined. `operation` as in X-Amz-Target. */
export function validateSqs(operation: string, body: Body): Violation | undefined {
  switch (operation) {
    case 'SendMessage':
      return checkMessage(body);
    case 'SendMessageBatch': {
      const entries = body.Entries as Body[] | undefined;
      const e = checkEntries(operation, entries);
      if (e) return e;
      let total = 0;
      for (const m of entries!) {
        const v = checkMessage(m);
        if (v) return v;
        total += messageSize(String(m.MessageBody ?? ''), (m.MessageAttributes as Record<string, Attribute> | undefined) ?? {});
      }
      if (total > MAX_MESSAGE_BYTES) {
        return violation(R.batchTooLong, `Batch requests cannot be longer than ${MAX_MESSAGE_BYTES} bytes. You have sent ${total} bytes.`);
      }
      return undefined;
    }
    case 'ReceiveMessage':
      return (
        range(R.maxMessagesRange, 'MaxNumberOfMessages', body.MaxNumberOfMessages, 1, MAX_BATCH_ENTRIES, `Must be between 1 and ${MAX_BATCH_ENTRIES}, if provided.`) ??
        range(R.waitRange, 'WaitTimeSeconds', body.WaitTimeSeconds, 0, MAX_WAIT_SECONDS, `Must be >= 0 and <= ${MAX_WAIT_SECONDS}, if provided.`) ??
        range(R.visibilityRange, 'VisibilityTimeout', body.VisibilityTimeout, 0, MAX_VISIBILITY_SECONDS, VIS_REASON)
      );
    case 'ChangeMessageVisibility':
      return range(R.visibilityRange, 'VisibilityTimeout', body.VisibilityTimeout, 0, MAX_VISIBILITY_SECONDS, VIS_REASON);
    case 'ChangeMessageVisibilityBatch': {
      const entries = body.Entries as Body[] | undefined;
      const e = checkEntries(operation, entries);
      if (e) return e;
      for (const m of entries!) {
        const v = range(R.visibilityRange, 'VisibilityTimeout', m.VisibilityTimeout, 0, MAX_VISIBILITY_SECONDS, VIS_REASON);
        if (v) return v;
      }
      return undefined;
    }
    case 'DeleteMessageBatch':
      return checkEntries(operation, body.Entries as Body[] | undefined);
    case 'CreateQueue': {
      const attributes = (body.Attributes as Record<string, string> | undefined) ?? {};
      return (
        checkQueueName(String(body.QueueName ?? ''), attributes) ??
        checkQueueAttributes(attributes) ??
        checkTags(body.tags as Record<string, string> | undefined)
      );
    }
    case 'SetQueueAttributes':
      return checkQueueAttributes((body.Attributes as Record<string, string> | undefined) ?? {});
    case 'TagQueue':
      return checkTags(body.Tags as Record<string, string> | undefined);
    default:
      return undefined;
  }
}
