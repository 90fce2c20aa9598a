/**
 * The DynamoDB contention model (pure, on a hand-moved clock), and the layer answering with it
 * over HTTP so that the SDK sees DynamoDB's typed errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { describeAws, createSharedResources, motoClients, startMoto, type Moto } from '../../../test/support/moto.js';
import type { AwsClients } from '../../common/src/aws/clients.js';
import { ContentionModel, contentionFromEnv, startStrictLayer, type StrictLayer } from '../src/index.js';

const T = 'tbl';
const keys = () => ['pk', 'sk'] as const;
const key = (sk: string) => ({ pk: { S: 'JOB#j' }, sk: { S: sk } });
const update = (sk: string) => ({ Update: { TableName: T, Key: key(sk), UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': { N: '1' } } } });
const tx = (...sks: string[]) => ({ TransactItems: sks.map(update) });
const single = (sk: string) => update(sk).Update;

describe('contention model', () => {
  function model(o: { windowMs?: number; itemWritesPerSecond?: number }) {
    let now = 1_000_000;
    const m = new ContentionModel({ ...o, now: () => now });
    /** Passed on to moto. */
    const ok = (op: string, body: Record<string, unknown>) => expect(m.check(op, body, keys)?.answer).toBeUndefined();
    /** Refused: the answer instead of moto's. */
    const refused = (op: string, body: Record<string, unknown>) => {
      const v = m.check(op, body, keys);
      expect(v?.answer).toBeDefined();
      return v!.answer!;
    };
    return { m, ok, refused, advance: (ms: number) => (now += ms) };
  }

  it('is off by default: nothing is refused', () => {
    const m = new ContentionModel();
    expect(m.enabled).toBe(false);
    for (let i = 0; i < 10; i++) expect(m.check('TransactWriteItems', tx('JOB'), keys)).toBeUndefined();
  });

  it('a transaction overlapping another on one item within the window is cancelled with TransactionConflict on that action', () => {
    const { m, ok, refused, advance } = model({ windowMs: 20 });
    ok('TransactWriteItems', tx('TASK#1', 'JOB'));
    advance(5);
    const a = refused('TransactWriteItems', tx('TASK#2', 'JOB'));
    expect(a).toMatchObject({ kind: 'conflict', status: 400 });
    const body = JSON.parse(a.body);
    expect(body.__type).toMatch(/#TransactionCanceledException$/);
    expect(body.CancellationReasons).toEqual([{ Code: 'None' }, { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }]);
    expect(body.message).toContain('[None, TransactionConflict]');
    // Other items are free; the cancelled transaction held nothing.
    ok('TransactWriteItems', tx('TASK#2', 'JOB#COUNT#001'));
    advance(16); // 21 ms after the first: its hold on JOB is over
    ok('TransactWriteItems', tx('TASK#3', 'JOB'));
    expect(m.stats).toEqual({ writes: 4, conflicts: 1, throttles: 0 });
    // A transaction is answered no sooner than its window's end.
    expect(m.check('TransactWriteItems', tx('LATER'), keys)?.hold?.until).toBe(1_000_021 + 20);
  });

  it('a single-item write on an item an ongoing transaction holds: TransactionConflictException; single writes never hold', () => {
    const { m, ok, refused, advance } = model({ windowMs: 20 });
    ok('TransactWriteItems', tx('TASK#1'));
    const a = refused('UpdateItem', single('TASK#1'));
    expect(a.kind).toBe('conflict');
    expect(JSON.parse(a.body).__type).toMatch(/#TransactionConflictException$/);
    // A Put's key comes from its Item and the table's key schema.
    expect(refused('PutItem', { TableName: T, Item: { ...key('TASK#1'), x: { S: 'y' } } }).kind).toBe('conflict');
    // Two single writes on one item do not conflict, nor does a transaction after one.
    ok('UpdateItem', single('TASK#9'));
    ok('UpdateItem', single('TASK#9'));
    ok('TransactWriteItems', tx('TASK#9'));
    advance(25);
    ok('UpdateItem', single('TASK#1'));
    // Reads and queries are never refused.
    ok('GetItem', { TableName: T, Key: key('TASK#9') });
  });

  it('an item written over its rate in a second is throttled: ThrottlingException alone, ThrottlingError in a transaction', () => {
    const { m, ok, refused, advance } = model({ itemWritesPerSecond: 10 });
    // 1 unit per single write, 2 per transactional one: 4 + 2 × 3 = 10 units.
    for (let i = 0; i < 4; i++) ok('UpdateItem', single('HOT'));
    for (let i = 0; i < 3; i++) ok('TransactWriteItems', tx('HOT', `T#${i}`));
    const plain = refused('UpdateItem', single('HOT'));
    expect(plain.kind).toBe('throttle');
    expect(JSON.parse(plain.body)).toMatchObject({ __type: expect.stringMatching(/#ThrottlingException$/), ThrottlingReasons: [{ reason: 'TableWriteKeyRangeThroughputExceeded' }] });
    const cancelled = JSON.parse(refused('TransactWriteItems', tx('COLD', 'HOT')).body);
    expect(cancelled.CancellationReasons.map((r: { Code: string }) => r.Code)).toEqual(['None', 'ThrottlingError']);
    // A refused write spent nothing: COLD is still free, HOT frees up after a second.
    ok('TransactWriteItems', tx('COLD'));
    advance(1001);
    ok('UpdateItem', single('HOT'));
    expect(m.stats).toMatchObject({ throttles: 2, conflicts: 0 });
  });

  it('parameters from the environment; bad values are refused with the variable named', () => {
    expect(contentionFromEnv({})).toBeUndefined();
    expect(contentionFromEnv({ GQ_CONTENTION_WINDOW_MS: '15' })).toEqual({ windowMs: 15, itemWritesPerSecond: undefined });
    expect(contentionFromEnv({ GQ_ITEM_WRITES_PER_S: '1000' })).toEqual({ windowMs: undefined, itemWritesPerSecond: 1000 });
    expect(() => contentionFromEnv({ GQ_ITEM_WRITES_PER_S: 'fast' })).toThrow(/GQ_ITEM_WRITES_PER_S/);
  });
});

describeAws('contention over HTTP (moto behind the layer)', () => {
  let moto: Moto;
  let layer: StrictLayer;
  let c: AwsClients;
  let table: string;

  beforeAll(async () => {
    moto = (await startMoto())!;
    layer = await startStrictLayer({ upstream: moto.endpoint, contention: { windowMs: 400, itemWritesPerSecond: 6 } });
    c = motoClients(layer.endpoint);
    ({ table } = await createSharedResources(layer.endpoint, { table: 'gq-test-contention' }));
  });
  afterAll(async () => {
    c?.destroy();
    await layer?.stop();
    await moto?.stop();
  });

  const k = (sk: string) => ({ pk: { S: 'JOB#h' }, sk: { S: sk } });
  const add = (sk: string) => ({ TableName: table, Key: k(sk), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } });

  it('the SDK sees TransactionCanceledException with TransactionConflict, and TransactionConflictException; nothing reached moto', async () => {
    // The first transaction is answered no sooner than 400 ms after it arrived: the others overlap it.
    const started = Date.now();
    const first = c.dynamodb.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: add('A') }, { Update: add('B') }] }));
    await new Promise((r) => setTimeout(r, 100));
    const err = await c.dynamodb.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: add('C') }, { Update: add('B') }] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionCanceledException);
    expect((err as TransactionCanceledException).CancellationReasons?.map((r) => r.Code)).toEqual(['None', 'TransactionConflict']);
    const single = await c.dynamodb.send(new UpdateItemCommand(add('A'))).catch((e: unknown) => e);
    expect((single as Error).name).toBe('TransactionConflictException');
    expect(layer.contention.conflicts).toBe(2);
    await first;
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    // Answered: the items are free again.
    await c.dynamodb.send(new UpdateItemCommand(add('A')));
    // C was never written (the cancelled transaction changed nothing).
    const put = await c.dynamodb.send(new PutItemCommand({ TableName: table, Item: { ...k('C'), n: { N: '0' } }, ConditionExpression: 'attribute_not_exists(pk)' }));
    expect(put.$metadata.httpStatusCode).toBe(200);
  });

  it('a hot item: a transaction gets ThrottlingError as its reason; a single write ThrottlingException (retried by the SDK)', async () => {
    // 6 units a second: 6 single writes on D, then both kinds are throttled.
    for (let i = 0; i < 6; i++) await c.dynamodb.send(new UpdateItemCommand(add('D')));
    const tx = await c.dynamodb.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: add(`E${Date.now()}`) }, { Update: add('D') }] })).catch((e: unknown) => e);
    expect((tx as TransactionCanceledException).CancellationReasons?.map((r) => r.Code)).toEqual(['None', 'ThrottlingError']);
    const before = layer.contention.throttles;
    // The SDK retries a ThrottlingException by itself (its backoff may outlast D's second, or not).
    const plain = await c.dynamodb.send(new UpdateItemCommand(add('D'))).catch((e: unknown) => e);
    if (plain instanceof Error) expect(plain.name).toBe('ThrottlingException');
    expect(layer.contention.throttles).toBeGreaterThan(before);
  });
});
