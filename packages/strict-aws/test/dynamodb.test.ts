/** Every DynamoDB rule: a request that breaks it is refused with AWS's message; a valid one passes. */
import { describe, expect, it } from 'vitest';
import { DYNAMODB_RULES as R, expressionRefs, itemSize, validateDynamoDB, type DynamoContext } from '../src/dynamodb.js';
import type { Rule } from '../src/rules.js';

const ctx: DynamoContext = { keyAttributes: (t) => (t === 'T' ? ['pk', 'sk'] : undefined) };
const S = (s: string) => ({ S: s });
const key = (sk = 'TASK#1') => ({ pk: S('JOB#a'), sk: S(sk) });
const big = (bytes: number) => S('x'.repeat(bytes));

interface Case {
  rule: Rule;
  op: string;
  bad: Record<string, unknown>;
  good: Record<string, unknown>;
  message?: RegExp;
}

const query = { TableName: 'T', KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': S('JOB#a') } };
const put = (n: number, sk = `TASK#${n}`) => ({ Put: { TableName: 'T', Item: { ...key(sk), n: { N: String(n) } } } });

const cases: Case[] = [
  {
    rule: R.namesEmpty, op: 'Query', message: /^ExpressionAttributeNames must not be empty$/,
    bad: { ...query, ExpressionAttributeNames: {} },
    good: query,
  },
  {
    rule: R.valuesEmpty, op: 'UpdateItem', message: /^ExpressionAttributeValues must not be empty$/,
    bad: { TableName: 'T', Key: key(), UpdateExpression: 'REMOVE #a', ExpressionAttributeNames: { '#a': 'a' }, ExpressionAttributeValues: {} },
    good: { TableName: 'T', Key: key(), UpdateExpression: 'REMOVE #a', ExpressionAttributeNames: { '#a': 'a' } },
  },
  {
    rule: R.namesWithoutExpression, op: 'GetItem',
    bad: { TableName: 'T', Key: key(), ExpressionAttributeNames: { '#a': 'a' } },
    good: { TableName: 'T', Key: key(), ProjectionExpression: '#a', ExpressionAttributeNames: { '#a': 'a' } },
  },
  {
    rule: R.valuesWithoutExpression, op: 'PutItem',
    bad: { TableName: 'T', Item: key(), ExpressionAttributeValues: { ':v': S('x') } },
    good: { TableName: 'T', Item: key(), ConditionExpression: 'attribute_not_exists(pk) OR v = :v', ExpressionAttributeValues: { ':v': S('x') } },
  },
  {
    rule: R.nameUnused, op: 'Query', message: /unused in expressions: keys: \{#s\}/,
    bad: { ...query, ExpressionAttributeNames: { '#s': 'state' } },
    good: { ...query, FilterExpression: '#s = :pk', ExpressionAttributeNames: { '#s': 'state' } },
  },
  {
    rule: R.valueUnused, op: 'UpdateItem', message: /ExpressionAttributeValues unused in expressions: keys: \{:b\}/,
    bad: { TableName: 'T', Key: key(), UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': S('1'), ':b': S('2') } },
    good: { TableName: 'T', Key: key(), UpdateExpression: 'SET a = :a, b = :b', ExpressionAttributeValues: { ':a': S('1'), ':b': S('2') } },
  },
  {
    rule: R.nameUndefined, op: 'UpdateItem', message: /^Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #v$/,
    bad: { TableName: 'T', Key: key(), UpdateExpression: 'SET a = :a', ConditionExpression: '#v = :a', ExpressionAttributeValues: { ':a': S('1') } },
    good: { TableName: 'T', Key: key(), UpdateExpression: 'SET a = :a', ConditionExpression: '#v = :a', ExpressionAttributeNames: { '#v': 'version' }, ExpressionAttributeValues: { ':a': S('1') } },
  },
  {
    rule: R.valueUndefined, op: 'Query', message: /attribute value: :p$/,
    bad: { TableName: 'T', KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)', ExpressionAttributeValues: { ':pk': S('x') } },
    good: { TableName: 'T', KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)', ExpressionAttributeValues: { ':pk': S('x'), ':p': S('TASK#') } },
  },
  {
    rule: R.reservedWord, op: 'Query', message: /^Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: state$/,
    bad: { ...query, ProjectionExpression: 'state' },
    good: { ...query, ProjectionExpression: '#s', ExpressionAttributeNames: { '#s': 'state' } },
  },
  {
    rule: R.itemTooLarge, op: 'PutItem', message: /^Item size has exceeded the maximum allowed size$/,
    bad: { TableName: 'T', Item: { ...key(), command: big(400 * 1024) } },
    good: { TableName: 'T', Item: { ...key(), command: big(390 * 1024) } },
  },
  {
    rule: R.emptyKey, op: 'GetItem', message: /Key: sk$/,
    bad: { TableName: 'T', Key: key('') },
    good: { TableName: 'T', Key: key() },
  },
  {
    rule: R.emptySet, op: 'PutItem', message: /An string set {2}may not be empty/,
    bad: { TableName: 'T', Item: { ...key(), tags: { SS: [] } } },
    good: { TableName: 'T', Item: { ...key(), tags: { SS: ['a'] } } },
  },
  {
    rule: R.transactTooMany, op: 'TransactWriteItems',
    bad: { TransactItems: Array.from({ length: 101 }, (_, i) => put(i)) },
    good: { TransactItems: Array.from({ length: 100 }, (_, i) => put(i)) },
  },
  {
    rule: R.transactTooLarge, op: 'TransactWriteItems',
    bad: { TransactItems: Array.from({ length: 11 }, (_, i) => ({ Put: { TableName: 'T', Item: { ...key(`TASK#${i}`), c: big(390 * 1024) } } })) },
    good: { TransactItems: Array.from({ length: 10 }, (_, i) => ({ Put: { TableName: 'T', Item: { ...key(`TASK#${i}`), c: big(390 * 1024) } } })) },
  },
  {
    rule: R.transactSameItem, op: 'TransactWriteItems', message: /^Transaction request cannot include multiple operations on one item$/,
    bad: { TransactItems: [put(1), { Update: { TableName: 'T', Key: key('TASK#1'), UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': S('1') } } }] },
    good: { TransactItems: [put(1), { Update: { TableName: 'T', Key: key('JOB'), UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': S('1') } } }] },
  },
  {
    rule: R.batchWriteTooMany, op: 'BatchWriteItem',
    bad: { RequestItems: { T: Array.from({ length: 26 }, (_, i) => ({ DeleteRequest: { Key: key(`TASK#${i}`) } })) } },
    good: { RequestItems: { T: Array.from({ length: 25 }, (_, i) => ({ DeleteRequest: { Key: key(`TASK#${i}`) } })) } },
  },
  {
    rule: R.batchWriteDuplicate, op: 'BatchWriteItem', message: /^Provided list of item keys contains duplicates$/,
    bad: { RequestItems: { T: [{ DeleteRequest: { Key: key() } }, { PutRequest: { Item: { ...key(), a: S('1') } } }] } },
    good: { RequestItems: { T: [{ DeleteRequest: { Key: key() } }, { PutRequest: { Item: { ...key('TASK#2'), a: S('1') } } }] } },
  },
  {
    rule: R.batchGetTooMany, op: 'BatchGetItem', message: /^Too many items requested for the BatchGetItem call$/,
    bad: { RequestItems: { T: { Keys: Array.from({ length: 101 }, (_, i) => key(`TASK#${i}`)) } } },
    good: { RequestItems: { T: { Keys: Array.from({ length: 100 }, (_, i) => key(`TASK#${i}`)) } } },
  },
  {
    rule: R.batchGetDuplicate, op: 'BatchGetItem',
    bad: { RequestItems: { T: { Keys: [key(), key()], ConsistentRead: true } } },
    good: { RequestItems: { T: { Keys: [key(), key('JOB')], ConsistentRead: true } } },
  },
  {
    rule: R.queryWithoutKeyCondition, op: 'Query',
    bad: { TableName: 'T', FilterExpression: 'a = :a', ExpressionAttributeValues: { ':a': S('1') } },
    good: { TableName: 'T', KeyConditionExpression: 'pk = :a', ExpressionAttributeValues: { ':a': S('1') } },
  },
  {
    rule: R.consistentReadOnIndex, op: 'Query', message: /^Consistent reads are not supported on global secondary indexes$/,
    bad: { TableName: 'T', IndexName: 'failed', KeyConditionExpression: 'fpk = :a', ExpressionAttributeValues: { ':a': S('1') }, ConsistentRead: true },
    good: { TableName: 'T', IndexName: 'failed', KeyConditionExpression: 'fpk = :a', ExpressionAttributeValues: { ':a': S('1') } },
  },
];

describe('DynamoDB rules', () => {
  it.each(cases.map((c) => [c.rule.id, c] as const))('%s fires, and a valid request passes', (_id, c) => {
    const v = validateDynamoDB(c.op, c.bad, ctx);
    expect(v?.rule.id).toBe(c.rule.id);
    if (c.message) expect(v?.message).toMatch(c.message);
    expect(validateDynamoDB(c.op, c.good, ctx)).toBeUndefined();
  });

  it('has a case for every rule, each citing an AWS page', () => {
    expect(new Set(cases.map((c) => c.rule.id))).toEqual(new Set(Object.values(R).map((r) => r.id)));
    for (const r of Object.values(R)) expect(r.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
  });

  it('reads placeholders and bare names of expressions, not functions or keywords', () => {
    expect(expressionRefs('attribute_not_exists(#s) OR #s <> :f')).toEqual({ names: ['#s', '#s'], values: [':f'], bare: [] });
    expect(expressionRefs('SET #tags.#k = :v, a.b[0] = if_not_exists(c, :w) REMOVE d')).toEqual({
      names: ['#tags', '#k'],
      values: [':v', ':w'],
      bare: ['a', 'b', 'c', 'd'],
    });
  });

  it('sizes items as DynamoDB does (names + values)', () => {
    expect(itemSize({ ab: S('xyz') })).toBe(5);
    expect(itemSize({ n: { N: '12345' } })).toBe(1 + 4);
    expect(itemSize({ m: { M: { k: S('v') } } })).toBe(1 + 3 + 1 + 1 + 1);
  });
});
