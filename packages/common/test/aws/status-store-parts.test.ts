/**
 * The DynamoDB store's pure parts (no network): the expression builder never yields an empty
 * ExpressionAttributeNames / Values, the one read-decide-write loop, and the held-records cache.
 */
import { describe, expect, it } from 'vitest';
import { marshall } from '@aws-sdk/util-dynamodb';
import { validateDynamoDB } from '@gq/strict-aws';
import { Expr, keyCondition } from '../../src/aws/status-store/expressions.js';
import { HeldRecords } from '../../src/aws/status-store/held.js';
import { CONDITION_FAILED, readDecideWrite, type Plan } from '../../src/aws/status-store/loop.js';
import { sendWrite, type WriteOutcome } from '../../src/aws/status-store/write-outcome.js';
import { newTaskRecord } from '../../src/job/transitions.js';

const ctx = { keyAttributes: () => ['pk', 'sk'] };
const wire = <T extends { ExpressionAttributeValues?: Record<string, unknown> }>(p: T) => ({
  ...p,
  ...(p.ExpressionAttributeValues ? { ExpressionAttributeValues: marshall(p.ExpressionAttributeValues) } : {}),
});

describe('Expr', () => {
  it('adds each map only when it has entries', () => {
    expect(new Expr().build({ TableName: 't', KeyConditionExpression: 'pk = x' })).toEqual({ TableName: 't', KeyConditionExpression: 'pk = x' });
    const v = new Expr();
    const onlyValues = v.build({ KeyConditionExpression: keyCondition(v, 'JOB#j') });
    expect(onlyValues).not.toHaveProperty('ExpressionAttributeNames');
    expect(onlyValues.ExpressionAttributeValues).toEqual({ ':v0': 'JOB#j' });
    const n = new Expr();
    const onlyNames = n.build({ ProjectionExpression: n.name('state') });
    expect(onlyNames).toEqual({ ProjectionExpression: '#n0', ExpressionAttributeNames: { '#n0': 'state' } });
  });

  it('every key condition is a Query the strict layer accepts (placeholders defined and used)', () => {
    for (const range of [undefined, { prefix: 'TASK#' }, { from: 'CMD#0000001', to: 'CMD#0000009' }]) {
      const e = new Expr();
      const q = e.build({ TableName: 't', KeyConditionExpression: keyCondition(e, 'JOB#j', range), ConsistentRead: true });
      expect(validateDynamoDB('Query', wire(q), ctx)).toBeUndefined();
    }
    const e = new Expr();
    const q = e.build({ TableName: 't', KeyConditionExpression: keyCondition(e, 'JOB#j', { prefix: 'TASK#' }), ProjectionExpression: e.name('state') });
    expect(validateDynamoDB('Query', wire(q), ctx)).toBeUndefined();
  });
});

describe('readDecideWrite: the one read-decide-write loop', () => {
  /** A plan whose write answers `outcomes` in turn; counts the plans made. */
  function scripted(outcomes: WriteOutcome[]) {
    let plans = 0;
    const plan = async (): Promise<Plan<number>> => {
      const n = ++plans;
      return { result: n, write: async () => outcomes.shift() ?? 'ok' };
    };
    return { plan, plans: () => plans };
  }

  it('answers at once when there is nothing to write', async () => {
    expect(await readDecideWrite(async () => ({ result: 'none' }))).toBe('none');
  });

  it('a lost condition reads and decides again; the result is the one written', async () => {
    const s = scripted(['condition', 'condition']);
    expect(await readDecideWrite(s.plan)).toBe(3);
    expect(s.plans()).toBe(3);
  });

  it("with 'stop', a lost condition ends the loop with CONDITION_FAILED", async () => {
    const s = scripted(['conflict', 'condition']);
    expect(await readDecideWrite(s.plan, 'stop')).toBe(CONDITION_FAILED);
    expect(s.plans()).toBe(2);
  });

  it('conflicts and throttles are tried again after a pause, as many in a row as come (here 6)', async () => {
    const s = scripted(Array.from({ length: 6 }, (_, i) => (i % 2 ? 'throttle' : 'conflict')));
    expect(await readDecideWrite(s.plan)).toBe(7);
  });

  it('an error that is no write outcome is thrown, not retried', async () => {
    let plans = 0;
    const failing = Object.assign(new Error('boom'), { name: 'ValidationException' });
    const plan = async (): Promise<Plan<number>> => (plans++, { result: 1, write: () => sendWrite(() => Promise.reject(failing)) });
    await expect(readDecideWrite(plan)).rejects.toBe(failing);
    expect(plans).toBe(1);
  });

  it('sendWrite classifies by error name, and its classifier can refuse an outcome (then the error is thrown)', async () => {
    const cond = Object.assign(new Error('x'), { name: 'ConditionalCheckFailedException' });
    expect(await sendWrite(() => Promise.reject(cond))).toBe('condition');
    await expect(sendWrite(() => Promise.reject(cond), () => undefined)).rejects.toBe(cond);
    expect(await sendWrite(() => Promise.resolve())).toBe('ok');
  });
});

describe('HeldRecords', () => {
  const rec = (job: string, task: number, state: 'RUNNING' | 'SUCCEEDED' = 'RUNNING') => ({
    ...newTaskRecord(job, { task, instanceType: 't', command: 'c' }, 0),
    state,
  });

  it('keeps only a held lease (RUNNING), forgets on drop and on the job deleted', () => {
    const h = new HeldRecords();
    h.keep(rec('a', 1), undefined);
    h.keep(rec('a', 2), undefined);
    h.keep(rec('b', 1), undefined);
    expect(h.get('a', 1)?.task.task).toBe(1);
    h.keep(rec('a', 1, 'SUCCEEDED'), undefined);
    expect(h.get('a', 1)).toBeUndefined();
    h.drop('b', 1);
    expect(h.get('b', 1)).toBeUndefined();
    h.keep(rec('b', 1), undefined);
    h.dropJob('a');
    expect(h.get('a', 2)).toBeUndefined();
    expect(h.get('b', 1)).toBeDefined();
  });

  it('holds at most 1024 records, dropping the oldest', () => {
    const h = new HeldRecords();
    for (let t = 1; t <= 1025; t++) h.keep(rec('a', t), undefined);
    expect(h.get('a', 1)).toBeUndefined();
    expect(h.get('a', 2)).toBeDefined();
    expect(h.get('a', 1025)).toBeDefined();
  });
});
