/**
 * gq's DynamoDB request builders against the strict layer's rules (pure, no network): the
 * largest legal task stays within the 400 KB item limit at every step of its life, and every
 * update a worker sends is one DynamoDB accepts.
 */
import { describe, expect, it } from 'vitest';
import { marshall } from '@aws-sdk/util-dynamodb';
import { itemSize, validateDynamoDB } from '@gq/strict-aws';
import { counterUpdate, instanceBusyUpdate, jobPk, taskSk, taskUpdate } from '../../src/aws/status-store/index.js';
import { MAX_COMMAND_BYTES } from '../../src/job/jobfile/index.js';
import type { JobRecord, TaskRecord } from '../../src/job/model.js';
import { emptyCounts } from '../../src/job/states.js';
import { decideClaim, decideComplete, decideTag, MAX_TASK_TAGS, newTaskRecord } from '../../src/job/transitions.js';
import { makeSpec } from '../contract/status.contract.js';
// The agent's budget for a task's output keys (packages/agent/src/uploads.ts).
const MAX_OUTPUT_KEYS_BYTES = 128 * 1024;

const ctx = { keyAttributes: () => ['pk', 'sk'] };
const MAX_ITEM = 400 * 1024;
const wire = <T extends { Key?: object; ExpressionAttributeValues?: object }>(p: T) => ({
  ...p,
  ...(p.Key ? { Key: marshall(p.Key) } : {}),
  ...(p.ExpressionAttributeValues ? { ExpressionAttributeValues: marshall(p.ExpressionAttributeValues, { removeUndefinedValues: true }) } : {}),
});
const item = (t: TaskRecord) => marshall({ pk: jobPk(t.job), sk: taskSk(t.task), kind: 'task', ...t }, { removeUndefinedValues: true });

const JOB = 'j'.repeat(40);
const spec = makeSpec(JOB, 1_000_000);
const job: JobRecord = { ...spec, counts: emptyCounts(), cancelRequested: false, updatedAt: spec.createdAt };
// The largest command the job file allows, of 3-byte characters (a byte limit: the same bytes).
const command = '€'.repeat(Math.floor(MAX_COMMAND_BYTES / 3));

describe('gq’s DynamoDB requests pass the strict rules', () => {
  it('the largest legal task item stays within 400 KB through claim, tags and completion', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const created = newTaskRecord(JOB, { task: 999_999, instanceType: 'u-6tb1.112xlarge', command }, now);
    expect(validateDynamoDB('PutItem', { TableName: 't', Item: item(created), ConditionExpression: 'attribute_not_exists(pk)' }, ctx)).toBeUndefined();

    const claim = decideClaim(created, job, `i-${'0'.repeat(17)}`, now, 60_000);
    let t = claim.write!;
    const tx = [
      { Update: wire(taskUpdate('t', created, t)) },
      { Update: wire(counterUpdate('t', JOB, claim.delta, now)) },
      { Update: wire(instanceBusyUpdate('t', t, t.instance!, now)) },
    ];
    expect(validateDynamoDB('TransactWriteItems', { TransactItems: tx }, ctx)).toBeUndefined();

    for (let i = 0; i < MAX_TASK_TAGS; i++) t = decideTag(t, `k${i}`.padEnd(64, 'k'), '€'.repeat(256), now);
    const done = decideComplete(t, job, t.instance!, {
      kind: 'failed',
      exitCode: 1,
      error: 'exited with code 1',
      stderrTail: '€'.repeat(4096),
      logKey: `jobs/${JOB}/tasks/999999/log.txt`,
      retryable: false,
    }, now).write!;
    const update = wire(taskUpdate('t', t, done, { sameLease: true }));
    expect(validateDynamoDB('UpdateItem', update, ctx)).toBeUndefined();
    const bytes = itemSize(item(done));
    expect(bytes).toBeLessThan(MAX_ITEM);
    // And with room to spare (attribute names, future fields).
    expect(bytes).toBeLessThan(MAX_ITEM * 0.5);
  });

  it('a retried task that succeeds with the most output keys an agent records still fits (stderr tail kept)', () => {
    const now = 0;
    const failed: TaskRecord = {
      ...newTaskRecord(JOB, { task: 999_999, instanceType: 't3.small', command }, now),
      stderrTail: '€'.repeat(4096),
      tags: Object.fromEntries(Array.from({ length: MAX_TASK_TAGS }, (_, i) => [`k${i}`.padEnd(64, 'k'), '€'.repeat(256)])),
    };
    const running = decideClaim(failed, job, 'i-0123456789abcdef0', now, 60_000).write!;
    const prefix = `jobs/${JOB}/tasks/999999/files/out/`;
    const outputKeys: string[] = [];
    for (let n = 0, i = 0; ; i++) {
      const k = `${prefix}${String(i).padStart(8, '0')}.csv`;
      if (n + Buffer.byteLength(k) > MAX_OUTPUT_KEYS_BYTES) break;
      outputKeys.push(k);
      n += Buffer.byteLength(k);
    }
    const done = decideComplete(running, job, running.instance!, { kind: 'succeeded', exitCode: 0, resultKey: `${prefix}r.csv`, outputKeys }, now).write!;
    expect(validateDynamoDB('UpdateItem', wire(taskUpdate('t', running, done, { sameLease: true })), ctx)).toBeUndefined();
    expect(itemSize(item(done))).toBeLessThan(MAX_ITEM * 0.9);
  });

  it('a counter update without a delta and an update that only removes attributes are valid requests', () => {
    expect(validateDynamoDB('UpdateItem', wire(counterUpdate('t', JOB, {}, 0)), ctx)).toBeUndefined();
    const now = 0;
    const a = newTaskRecord(JOB, { task: 1, instanceType: 't3.small', command: 'true' }, now);
    const b = { ...a, stderrTail: 'x', version: a.version + 1 };
    expect(validateDynamoDB('UpdateItem', wire(taskUpdate('t', b, { ...b, stderrTail: undefined, version: b.version + 1 })), ctx)).toBeUndefined();
  });
});
