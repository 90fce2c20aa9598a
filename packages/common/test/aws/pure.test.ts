/** Pure parts of the AWS backend: resource names and fleet arithmetic (no moto needed). */
import { describe, expect, it } from 'vitest';
import { clampDesired, desiredForBacklog, raisedDesired } from '../../src/aws/scaling.js';
import { partSizeFor } from '../../src/aws/artifact-store.js';
import { deadLetterQueueName, groupName, isValidJobName, launchTemplateName, queueName } from '../../src/aws/names.js';
import { classifyWriteError, counterUpdate, taskUpdate, taskSk } from '../../src/aws/status-store/index.js';
import { newTaskRecord, decideClaim } from '../../src/job/transitions.js';
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';

describe('names', () => {
  it('builds the documented names', () => {
    expect(queueName('sim-1', 'c5.2xlarge')).toBe('gq-sim-1-c5_2xlarge');
    expect(deadLetterQueueName('sim-1', 'c5.2xlarge')).toBe('gq-sim-1-c5_2xlarge-dlq');
    expect(groupName('sim-1', 'c5.2xlarge')).toBe('gq-sim-1-c5.2xlarge');
    expect(launchTemplateName('sim-1', 'u-6tb1.metal')).toBe('gq-sim-1-u-6tb1.metal');
  });

  it('stays within AWS limits for the longest job names', () => {
    const job = 'a'.repeat(40);
    expect(isValidJobName(job)).toBe(true);
    for (const type of ['c5.2xlarge', 'u-24tb1.112xlarge', 'x'.repeat(60) + '.metal']) {
      const q = queueName(job, type);
      const d = deadLetterQueueName(job, type);
      expect(d.length).toBeLessThanOrEqual(80);
      expect(q).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(d).toMatch(/^[A-Za-z0-9_-]+-dlq$/);
      const g = groupName(job, type);
      expect(g.length).toBeLessThanOrEqual(128);
      expect(g).toMatch(/^[A-Za-z0-9().\-/_]+$/);
    }
    // Two long types that share a head still get different names.
    const t1 = 'y'.repeat(60) + '.a';
    const t2 = 'y'.repeat(60) + '.b';
    expect(queueName(job, t1)).not.toBe(queueName(job, t2));
  });

  it('refuses names that AWS would refuse', () => {
    expect(() => queueName('Upper', 't3.micro')).toThrow(/invalid job name/);
    expect(() => queueName('a'.repeat(41), 't3.micro')).toThrow(/invalid job name/);
    expect(() => groupName('a b', 't3.micro')).toThrow(/invalid job name/);
    expect(() => queueName('my-job', '')).toThrow(/instance type/);
  });
});

describe('fleet arithmetic', () => {
  it('clamps to [0, max] and never below busy workers', () => {
    expect(clampDesired(5, 3)).toBe(3);
    expect(clampDesired(-2, 3)).toBe(0);
    expect(clampDesired(2, 10, 4)).toBe(4);
    expect(clampDesired(0, 10, 0)).toBe(0);
    expect(clampDesired(1.2, 10)).toBe(2);
    // Busy above a lowered maximum: still never above the maximum (AWS would refuse it).
    expect(clampDesired(0, 2, 5)).toBe(2);
    expect(clampDesired(Number.NaN, 5, 1)).toBe(1);
  });

  it('desired = min(max, ceil(pending / slots)), never below busy', () => {
    expect(desiredForBacklog({ pending: 0, slotsPerInstance: 4, max: 10 })).toBe(0);
    expect(desiredForBacklog({ pending: 1, slotsPerInstance: 4, max: 10 })).toBe(1);
    expect(desiredForBacklog({ pending: 9, slotsPerInstance: 4, max: 10 })).toBe(3);
    expect(desiredForBacklog({ pending: 1000, slotsPerInstance: 4, max: 10 })).toBe(10);
    expect(desiredForBacklog({ pending: 2, slotsPerInstance: 1, max: 10, busy: 6 })).toBe(6);
    expect(desiredForBacklog({ pending: 5, slotsPerInstance: 0, max: 10 })).toBe(5); // slots < 1 → 1
  });

  it("an agent's raise: ceil(pending / slots), never below the current desired, never above max", () => {
    expect(raisedDesired({ current: 0, pending: 1, slotsPerInstance: 1, max: 4 })).toBe(1);
    expect(raisedDesired({ current: 0, pending: 5, slotsPerInstance: 2, max: 4 })).toBe(3);
    // Another agent (or gq) already raised it further: kept.
    expect(raisedDesired({ current: 3, pending: 1, slotsPerInstance: 1, max: 4 })).toBe(3);
    // Clamped to MaxSize (AWS refuses more; moto would accept it).
    expect(raisedDesired({ current: 0, pending: 9, slotsPerInstance: 1, max: 2 })).toBe(2);
    expect(raisedDesired({ current: 0, pending: 3, slotsPerInstance: 1, max: 0 })).toBe(0);
  });
});

describe('dynamo expressions', () => {
  const job = {
    name: 'j',
    backend: 'aws' as const,
    createdAt: '2025-01-01T00:00:00.000Z',
    total: 1,
    instanceTypes: { 't3.micro': 1 },
    codeKey: 'k',
    resultsPath: 'r',
    outputs: [],
    maxAttempts: 2,
    timeoutSeconds: 0,
    installTimeoutSeconds: 1,
    installAttempts: 1,
    visibilitySeconds: 30,
    idleSeconds: 5,
    counts: { queued: 1, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
    cancelRequested: false,
    updatedAt: '2025-01-01T00:00:00.000Z',
  };

  it('a decided write updates changed attributes only, never tags, conditional on the version read', () => {
    const before = { ...newTaskRecord('j', { task: 42, instanceType: 't3.micro', command: 'echo' }, 0), tags: { p: '1' } };
    const d = decideClaim(before, job, 'i-1', 1000, 5000);
    const u = taskUpdate('t', before, d.write!);
    expect(u.Key).toEqual({ pk: 'JOB#j', sk: taskSk(42) });
    expect(taskSk(42)).toBe('TASK#0000042');
    const names = Object.values(u.ExpressionAttributeNames);
    expect(names).toEqual(expect.arrayContaining(['state', 'attempts', 'instance', 'leaseUntil', 'version']));
    expect(names).not.toContain('tags');
    expect(names).not.toContain('command');
    expect(u.UpdateExpression).toMatch(/^SET /);
    expect(u.ConditionExpression).toMatch(/^#n\d+ = :v\d+$/);
    expect(Object.values(u.ExpressionAttributeValues ?? {})).toContain(0); // the version read

    // Clearing attributes REMOVEs them.
    const after = { ...d.write!, instance: undefined, leaseUntil: undefined, version: d.write!.version + 1 };
    const u2 = taskUpdate('t', d.write!, after);
    expect(u2.UpdateExpression).toMatch(/REMOVE #n\d+, #n\d+/);
  });

  it('counter updates ADD only the non-zero deltas', () => {
    const u = counterUpdate('t', 'j', { queued: -1, running: 1, failed: 0 }, 0);
    expect(u.UpdateExpression).toMatch(/ADD #n\d+ :v\d+, #n\d+ :v\d+$/);
    expect(Object.values(u.ExpressionAttributeNames)).toEqual(expect.arrayContaining(['queued', 'running', 'updatedAt', 'pk']));
    expect(Object.values(u.ExpressionAttributeNames)).not.toContain('failed');
  });

  it('classifies write errors by name and reason code', () => {
    const meta = { $metadata: {}, message: 'x' };
    expect(classifyWriteError(new ConditionalCheckFailedException(meta))).toBe('condition');
    const cancelled = (codes: string[]) =>
      new TransactionCanceledException({ ...meta, CancellationReasons: codes.map((Code) => ({ Code })) });
    expect(classifyWriteError(cancelled(['None', 'ConditionalCheckFailed']))).toBe('condition');
    expect(classifyWriteError(cancelled(['TransactionConflict', 'None']))).toBe('conflict');
    expect(classifyWriteError(cancelled(['ThrottlingError']))).toBe('throttle');
    expect(classifyWriteError(cancelled(['None', 'ProvisionedThroughputExceeded']))).toBe('throttle');
    expect(classifyWriteError(cancelled(['ValidationError']))).toBeUndefined();
    expect(classifyWriteError(Object.assign(new Error('x'), { name: 'TransactionConflictException' }))).toBe('conflict');
    expect(classifyWriteError(Object.assign(new Error('x'), { name: 'ThrottlingException' }))).toBe('throttle');
    expect(classifyWriteError(Object.assign(new Error('x'), { name: 'ProvisionedThroughputExceededException' }))).toBe('throttle');
    expect(classifyWriteError(new Error('ConditionalCheckFailed'))).toBeUndefined();
  });
});

describe('S3 multipart part size', () => {
  const MIB = 1024 * 1024;
  it('keeps the configured size (never under 5 MiB) and grows parts so that a file needs at most 10,000', () => {
    expect(partSizeFor(100 * MIB, 8 * MIB)).toBe(8 * MIB);
    expect(partSizeFor(100 * MIB, 1 * MIB)).toBe(5 * MIB);
    const huge = 200 * 1024 * MIB; // 200 GiB
    expect(Math.ceil(huge / partSizeFor(huge, 8 * MIB))).toBeLessThanOrEqual(10_000);
    expect(partSizeFor(huge, 8 * MIB)).toBeGreaterThan(8 * MIB);
  });
});
