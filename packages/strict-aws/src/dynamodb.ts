/**
 * DynamoDB (JSON 1.0 protocol, `X-Amz-Target: DynamoDB_20120810.<Operation>`): the documented
 * refusals moto does not make. Pure: `validateDynamoDB(operation, body, ctx)` returns the first
 * violation or undefined. Errors are ValidationException (HTTP 400), with DynamoDB's message.
 * This module checks the operations; the rules and limits, the item checks and the expression
 * checks are in dynamodb-rules.ts, dynamodb-items.ts and dynamodb-expressions.ts.
 */
import { violation, type Violation } from './rules.js';
import {
  MAX_BATCH_GET,
  MAX_BATCH_WRITE,
  MAX_ITEM_BYTES,
  MAX_TRANSACT_ITEMS,
  MAX_TRANSACTION_BYTES,
  R,
  type DynamoContext,
  type Item,
} from './dynamodb-rules.js';
import { checkItem, checkKey, itemSize, keyId, keyOf, valueSize } from './dynamodb-items.js';
import { checkExpressions, type ExpressionSet } from './dynamodb-expressions.js';

export { DYNAMODB_RULES, type DynamoContext } from './dynamodb-rules.js';
export { itemSize } from './dynamodb-items.js';
export { expressionRefs } from './dynamodb-expressions.js';

type Body = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = <T>(v: unknown): T | undefined => (v && typeof v === 'object' ? (v as T) : undefined);

function exprSet(b: Body, kinds: readonly string[]): ExpressionSet {
  return {
    expressions: Object.fromEntries(kinds.map((k) => [k, str(b[k])])),
    names: obj<Record<string, string>>(b.ExpressionAttributeNames),
    values: obj<Item>(b.ExpressionAttributeValues),
  };
}

const KINDS: Record<string, readonly string[]> = {
  GetItem: ['ProjectionExpression'],
  PutItem: ['ConditionExpression'],
  DeleteItem: ['ConditionExpression'],
  UpdateItem: ['UpdateExpression', 'ConditionExpression'],
  Query: ['KeyConditionExpression', 'FilterExpression', 'ProjectionExpression'],
  Scan: ['FilterExpression', 'ProjectionExpression'],
  Put: ['ConditionExpression'],
  Delete: ['ConditionExpression'],
  Update: ['UpdateExpression', 'ConditionExpression'],
  ConditionCheck: ['ConditionExpression'],
  Get: ['ProjectionExpression'],
};

function updateValuesTooLarge(b: Body): boolean {
  const values = obj<Item>(b.ExpressionAttributeValues) ?? {};
  let n = 0;
  for (const v of Object.values(values)) n += valueSize(v);
  return n > MAX_ITEM_BYTES;
}

/** One write action (a single-item operation or one action of a transaction). */
function checkWrite(kind: string, b: Body, ctx: DynamoContext): Violation | undefined {
  const table = str(b.TableName) ?? '';
  const e = checkExpressions(exprSet(b, KINDS[kind] ?? []));
  if (e) return e;
  if (kind === 'PutItem' || kind === 'Put') return checkItem(table, obj<Item>(b.Item), ctx);
  const key = checkKey(obj<Item>(b.Key));
  if (key) return key;
  if ((kind === 'UpdateItem' || kind === 'Update') && updateValuesTooLarge(b)) {
    return violation(R.itemTooLarge, 'Item size to update has exceeded the maximum allowed size');
  }
  return undefined;
}

function transactWrite(b: Body, ctx: DynamoContext): Violation | undefined {
  const items = (b.TransactItems as Array<Record<string, Body>> | undefined) ?? [];
  if (items.length > MAX_TRANSACT_ITEMS) {
    return violation(
      R.transactTooMany,
      `1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TRANSACT_ITEMS}`,
    );
  }
  const seen = new Set<string>();
  let bytes = 0;
  for (const action of items) {
    const [kind, a] = Object.entries(action)[0] ?? [];
    if (!kind || !a) continue;
    const v = checkWrite(kind, a, ctx);
    if (v) return v;
    const table = str(a.TableName) ?? '';
    const item = obj<Item>(a.Item);
    const key = item ? keyOf(item, ctx.keyAttributes(table)) : obj<Item>(a.Key);
    if (key && (!item || ctx.keyAttributes(table))) {
      const id = keyId(table, key);
      if (seen.has(id)) return violation(R.transactSameItem, 'Transaction request cannot include multiple operations on one item');
      seen.add(id);
    }
    bytes += item ? itemSize(item) : itemSize(key ?? {}) + Object.values(obj<Item>(a.ExpressionAttributeValues) ?? {}).reduce((n, x) => n + valueSize(x), 0);
  }
  if (bytes > MAX_TRANSACTION_BYTES) {
    return violation(R.transactTooLarge, 'Transaction request size has exceeded the maximum allowed size of 4 MB');
  }
  return undefined;
}

function batchWrite(b: Body, ctx: DynamoContext): Violation | undefined {
  const tables = obj<Record<string, Array<Record<string, Body>>>>(b.RequestItems) ?? {};
  let total = 0;
  for (const [table, requests] of Object.entries(tables)) {
    total += requests.length;
    if (requests.length > MAX_BATCH_WRITE || total > MAX_BATCH_WRITE) {
      return violation(
        R.batchWriteTooMany,
        requests.length > MAX_BATCH_WRITE
          ? `1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to ${MAX_BATCH_WRITE}, Member must have length greater than or equal to 1]`
          : 'Too many items requested for the BatchWriteItem call',
      );
    }
    const seen = new Set<string>();
    for (const r of requests) {
      const put = obj<Body>(r.PutRequest);
      const del = obj<Body>(r.DeleteRequest);
      const item = obj<Item>(put?.Item);
      const v = item ? checkItem(table, item, ctx) : checkKey(obj<Item>(del?.Key));
      if (v) return v;
      const attrs = ctx.keyAttributes(table);
      const key = item ? (attrs ? keyOf(item, attrs) : undefined) : obj<Item>(del?.Key);
      if (!key) continue;
      const id = keyId(table, key);
      if (seen.has(id)) return violation(R.batchWriteDuplicate, 'Provided list of item keys contains duplicates');
      seen.add(id);
    }
  }
  return undefined;
}

function batchGet(b: Body): Violation | undefined {
  const tables = obj<Record<string, Body>>(b.RequestItems) ?? {};
  let total = 0;
  for (const [table, spec] of Object.entries(tables)) {
    const keys = (spec.Keys as Item[] | undefined) ?? [];
    total += keys.length;
    if (total > MAX_BATCH_GET) return violation(R.batchGetTooMany, 'Too many items requested for the BatchGetItem call');
    const e = checkExpressions(exprSet(spec, ['ProjectionExpression']));
    if (e) return e;
    const seen = new Set<string>();
    for (const k of keys) {
      const v = checkKey(k);
      if (v) return v;
      const id = keyId(table, k);
      if (seen.has(id)) return violation(R.batchGetDuplicate, 'Provided list of item keys contains duplicates');
      seen.add(id);
    }
  }
  return undefined;
}

/** Tables a request names (for the proxy to learn their key schemas first). */
export function tablesOf(operation: string, b: Body): string[] {
  if (operation === 'TransactWriteItems') {
    const items = (b.TransactItems as Array<Record<string, Body>> | undefined) ?? [];
    return [...new Set(items.map((a) => str(Object.values(a)[0]?.TableName)).filter((t): t is string => Boolean(t)))];
  }
  if (operation === 'BatchWriteItem') return Object.keys(obj<Body>(b.RequestItems) ?? {});
  const t = str(b.TableName);
  return t && (operation === 'PutItem') ? [t] : [];
}

/** The first documented refusal of a DynamoDB request, or undefined. `operation` as in X-Amz-Target. */
export function validateDynamoDB(operation: string, body: Body, ctx: DynamoContext): Violation | undefined {
  switch (operation) {
    case 'GetItem':
      return checkExpressions(exprSet(body, KINDS.GetItem!)) ?? checkKey(obj<Item>(body.Key));
    case 'PutItem':
    case 'DeleteItem':
    case 'UpdateItem':
      return checkWrite(operation, body, ctx);
    case 'Query':
      if (typeof body.KeyConditionExpression !== 'string' && !body.KeyConditions) {
        return violation(R.queryWithoutKeyCondition, 'Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.');
      }
      // gq's tables have global secondary indexes only (no local ones): a strongly consistent read
      // of one is refused ("Consistent reads are not supported on global secondary indexes").
      if (typeof body.IndexName === 'string' && body.ConsistentRead === true) {
        return violation(R.consistentReadOnIndex, 'Consistent reads are not supported on global secondary indexes');
      }
      return checkExpressions(exprSet(body, KINDS.Query!));
    case 'Scan':
      return checkExpressions(exprSet(body, KINDS.Scan!));
    case 'TransactWriteItems':
      return transactWrite(body, ctx);
    case 'BatchWriteItem':
      return batchWrite(body, ctx);
    case 'BatchGetItem':
      return batchGet(body);
    default:
      return undefined;
  }
}
