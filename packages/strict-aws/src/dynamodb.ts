/**
 * DynamoDB (JSON 1.0 protocol, `X-Amz-Target: DynamoDB_20120810.<Operation>`): the documented
 * refusals moto does not make. Pure: `validateDynamoDB(operation, body, ctx)` returns the first
 * violation or undefined. Errors are ValidationException (HTTP 400), with DynamoDB's message.
 */
import { RESERVED_WORDS } from './reserved-words.js';
import { defineRules, utf8Bytes, violation, type Violation } from './rules.js';

const API = 'https://docs.aws.amazon.com/amazondynamodb/latest/APIReference';
const GUIDE = 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide';
const V = { status: 400, code: 'ValidationException' } as const;

export const DYNAMODB_RULES = defineRules('dynamodb', {
  namesEmpty: { id: 'dynamodb.names-empty', summary: 'ExpressionAttributeNames given but empty', doc: `${GUIDE}/Expressions.ExpressionAttributeNames.html`, ...V },
  valuesEmpty: { id: 'dynamodb.values-empty', summary: 'ExpressionAttributeValues given but empty', doc: `${GUIDE}/Expressions.ExpressionAttributeValues.html`, ...V },
  namesWithoutExpression: { id: 'dynamodb.names-without-expression', summary: 'ExpressionAttributeNames without any expression', doc: `${GUIDE}/Expressions.ExpressionAttributeNames.html`, ...V },
  valuesWithoutExpression: { id: 'dynamodb.values-without-expression', summary: 'ExpressionAttributeValues without any expression', doc: `${GUIDE}/Expressions.ExpressionAttributeValues.html`, ...V },
  nameUnused: { id: 'dynamodb.name-unused', summary: 'an expression attribute name no expression of the request uses', doc: `${GUIDE}/Expressions.ExpressionAttributeNames.html`, ...V },
  valueUnused: { id: 'dynamodb.value-unused', summary: 'an expression attribute value no expression of the request uses', doc: `${GUIDE}/Expressions.ExpressionAttributeValues.html`, ...V },
  nameUndefined: { id: 'dynamodb.name-undefined', summary: 'a #name placeholder used but not defined', doc: `${GUIDE}/Expressions.ExpressionAttributeNames.html`, ...V },
  valueUndefined: { id: 'dynamodb.value-undefined', summary: 'a :value placeholder used but not defined', doc: `${GUIDE}/Expressions.ExpressionAttributeValues.html`, ...V },
  reservedWord: { id: 'dynamodb.reserved-word', summary: 'a reserved word used as a bare attribute name in an expression', doc: `${GUIDE}/ReservedWords.html`, ...V },
  itemTooLarge: { id: 'dynamodb.item-too-large', summary: 'an item over 400 KB', doc: `${GUIDE}/Constraints.html`, ...V },
  emptyKey: { id: 'dynamodb.empty-key', summary: 'a key attribute that is an empty string or binary', doc: `${GUIDE}/Constraints.html`, ...V },
  emptySet: { id: 'dynamodb.empty-set', summary: 'an empty set attribute value', doc: `${GUIDE}/HowItWorks.NamingRulesDataTypes.html`, ...V },
  transactTooMany: { id: 'dynamodb.transact-too-many', summary: 'TransactWriteItems with more than 100 actions', doc: `${API}/API_TransactWriteItems.html`, ...V },
  transactTooLarge: { id: 'dynamodb.transact-too-large', summary: 'TransactWriteItems over 4 MB', doc: `${API}/API_TransactWriteItems.html`, ...V },
  transactSameItem: { id: 'dynamodb.transact-same-item', summary: 'two actions of one transaction on one item', doc: `${API}/API_TransactWriteItems.html`, ...V },
  batchWriteTooMany: { id: 'dynamodb.batch-write-too-many', summary: 'BatchWriteItem with more than 25 requests', doc: `${API}/API_BatchWriteItem.html`, ...V },
  batchWriteDuplicate: { id: 'dynamodb.batch-write-duplicate', summary: 'BatchWriteItem with two requests on one item', doc: `${API}/API_BatchWriteItem.html`, ...V },
  batchGetTooMany: { id: 'dynamodb.batch-get-too-many', summary: 'BatchGetItem with more than 100 keys', doc: `${API}/API_BatchGetItem.html`, ...V },
  batchGetDuplicate: { id: 'dynamodb.batch-get-duplicate', summary: 'BatchGetItem with one key twice', doc: `${API}/API_BatchGetItem.html`, ...V },
  queryWithoutKeyCondition: { id: 'dynamodb.query-without-key-condition', summary: 'Query without KeyConditionExpression (or KeyConditions)', doc: `${API}/API_Query.html`, ...V },
});
const R = DYNAMODB_RULES;

/** What the validator needs to know about tables (the proxy learns it from CreateTable / DescribeTable). */
export interface DynamoContext {
  /** Names of the key attributes of a table, or undefined when not known. */
  keyAttributes(table: string): readonly string[] | undefined;
}

/** Maximum item size (400 KB, attribute names included), the transaction maximum (4 MB). */
export const MAX_ITEM_BYTES = 400 * 1024;
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024;
export const MAX_TRANSACT_ITEMS = 100;
export const MAX_BATCH_WRITE = 25;
export const MAX_BATCH_GET = 100;

type AttributeValue = Record<string, unknown>;
type Item = Record<string, AttributeValue>;

// ---------------------------------------------------------------------------------------------
// Sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)

function numberSize(n: string): number {
  const digits = n.replace(/^[-+]/, '').replace(/[eE].*$/, '').replace('.', '').replace(/^0+/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** DynamoDB's size of one attribute value (bytes). */
export function valueSize(v: AttributeValue): number {
  const [type, raw] = Object.entries(v)[0] ?? ['NULL', true];
  switch (type) {
    case 'S':
      return utf8Bytes(String(raw));
    case 'N':
      return numberSize(String(raw));
    case 'B':
      return Buffer.from(String(raw), 'base64').length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'SS':
      return (raw as string[]).reduce((a, s) => a + utf8Bytes(s), 0);
    case 'NS':
      return (raw as string[]).reduce((a, s) => a + numberSize(s), 0);
    case 'BS':
      return (raw as string[]).reduce((a, s) => a + Buffer.from(s, 'base64').length, 0);
    case 'L':
      return 3 + (raw as AttributeValue[]).reduce((a, e) => a + 1 + valueSize(e), 0);
    case 'M':
      return 3 + Object.entries(raw as Item).reduce((a, [k, e]) => a + 1 + utf8Bytes(k) + valueSize(e), 0);
    default:
      return 0;
  }
}

/** DynamoDB's size of an item: attribute names plus values. */
export function itemSize(item: Item): number {
  let n = 0;
  for (const [k, v] of Object.entries(item)) n += utf8Bytes(k) + valueSize(v);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Values

function emptySetIn(v: AttributeValue): string | undefined {
  for (const [type, raw] of Object.entries(v)) {
    if ((type === 'SS' || type === 'NS' || type === 'BS') && Array.isArray(raw) && raw.length === 0) {
      return type === 'SS' ? 'string' : type === 'NS' ? 'number' : 'binary';
    }
    if (type === 'L' && Array.isArray(raw)) for (const e of raw) {
      const s = emptySetIn(e as AttributeValue);
      if (s) return s;
    }
    if (type === 'M' && raw && typeof raw === 'object') for (const e of Object.values(raw as Item)) {
      const s = emptySetIn(e);
      if (s) return s;
    }
  }
  return undefined;
}

function checkValues(values: Item | undefined, where: 'item' | 'values'): Violation | undefined {
  for (const [k, v] of Object.entries(values ?? {})) {
    const set = emptySetIn(v);
    if (set) {
      const msg = `One or more parameter values were invalid: An ${set} set  may not be empty`;
      return violation(R.emptySet, where === 'values' ? `ExpressionAttributeValues contains invalid value: ${msg} for key ${k}` : msg);
    }
  }
  return undefined;
}

function emptyKeyOf(key: Item, attrs?: readonly string[]): string | undefined {
  for (const [k, v] of Object.entries(key)) {
    if (attrs && !attrs.includes(k)) continue;
    if (('S' in v && v.S === '') || ('B' in v && v.B === '')) return k;
  }
  return undefined;
}

function checkKey(key: Item | undefined, attrs?: readonly string[]): Violation | undefined {
  if (!key) return undefined;
  const k = emptyKeyOf(key, attrs);
  if (k === undefined) return undefined;
  return violation(
    R.emptyKey,
    `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${k}`,
  );
}

function checkItem(table: string, item: Item | undefined, ctx: DynamoContext): Violation | undefined {
  if (!item) return undefined;
  if (itemSize(item) > MAX_ITEM_BYTES) return violation(R.itemTooLarge, 'Item size has exceeded the maximum allowed size');
  const attrs = ctx.keyAttributes(table);
  return (attrs && checkKey(item, attrs)) || checkValues(item, 'item');
}

function keyOf(item: Item, attrs: readonly string[] | undefined): Item {
  if (!attrs) return item;
  return Object.fromEntries(attrs.filter((a) => a in item).map((a) => [a, item[a]!]));
}

function keyId(table: string, key: Item): string {
  return JSON.stringify([table, Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

// ---------------------------------------------------------------------------------------------
// Expressions

/** Syntax keywords and functions of DynamoDB expressions (not attribute names). */
const SYNTAX = new Set(['AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'SET', 'REMOVE', 'ADD', 'DELETE']);

export interface ExpressionRefs {
  names: string[];
  values: string[];
  /** Bare attribute names (path elements not written as #placeholders). */
  bare: string[];
}

/** The placeholders and bare attribute names of one expression (DynamoDB expressions have no string literals). */
export function expressionRefs(expr: string): ExpressionRefs {
  const names: string[] = [];
  const values: string[] = [];
  const bare: string[] = [];
  const re = /([#:]?)([A-Za-z_][A-Za-z0-9_]*|[0-9][A-Za-z0-9_]*)(\s*\()?/g;
  for (let m = re.exec(expr); m; m = re.exec(expr)) {
    const [, sigil, word, call] = m;
    if (sigil === '#') names.push(`#${word}`);
    else if (sigil === ':') values.push(`:${word}`);
    else if (call) continue; // a function: attribute_exists(...), size(...), if_not_exists(...)
    else if (/^[0-9]/.test(word!)) continue; // a list index [0]
    else if (!SYNTAX.has(word!.toUpperCase())) bare.push(word!);
  }
  return { names, values, bare };
}

interface ExpressionSet {
  expressions: Record<string, string | undefined>;
  names?: Record<string, string>;
  values?: Item;
}

/** The rules on one set of expressions sharing ExpressionAttributeNames / Values. */
export function checkExpressions({ expressions, names, values }: ExpressionSet): Violation | undefined {
  const given = Object.entries(expressions).filter((e): e is [string, string] => typeof e[1] === 'string');
  if (names && Object.keys(names).length === 0) return violation(R.namesEmpty, 'ExpressionAttributeNames must not be empty');
  if (values && Object.keys(values).length === 0) return violation(R.valuesEmpty, 'ExpressionAttributeValues must not be empty');
  if (given.length === 0) {
    if (names) return violation(R.namesWithoutExpression, 'ExpressionAttributeNames can only be specified when using expressions');
    if (values) return violation(R.valuesWithoutExpression, 'ExpressionAttributeValues can only be specified when using expressions');
    return undefined;
  }
  const usedNames = new Set<string>();
  const usedValues = new Set<string>();
  for (const [kind, expr] of given) {
    const refs = expressionRefs(expr);
    for (const n of refs.names) {
      if (!names || !(n in names)) {
        return violation(R.nameUndefined, `Invalid ${kind}: An expression attribute name used in the document path is not defined; attribute name: ${n}`);
      }
      usedNames.add(n);
    }
    for (const v of refs.values) {
      if (!values || !(v in values)) {
        return violation(R.valueUndefined, `Invalid ${kind}: An expression attribute value used in expression is not defined; attribute value: ${v}`);
      }
      usedValues.add(v);
    }
    const reserved = refs.bare.find((w) => RESERVED_WORDS.has(w.toUpperCase()));
    if (reserved) return violation(R.reservedWord, `Invalid ${kind}: Attribute name is a reserved keyword; reserved keyword: ${reserved}`);
  }
  const unusedNames = Object.keys(names ?? {}).filter((n) => !usedNames.has(n));
  if (unusedNames.length) {
    return violation(R.nameUnused, `Value provided in ExpressionAttributeNames unused in expressions: keys: {${unusedNames.join(', ')}}`);
  }
  const unusedValues = Object.keys(values ?? {}).filter((v) => !usedValues.has(v));
  if (unusedValues.length) {
    return violation(R.valueUnused, `Value provided in ExpressionAttributeValues unused in expressions: keys: {${unusedValues.join(', ')}}`);
  }
  return checkValues(values, 'values');
}

// ---------------------------------------------------------------------------------------------
// Operations

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
