/**
 * DynamoDB item rules (pure): the size of an item as DynamoDB counts it, and the checks of
 * attribute values (no empty sets, no empty key attributes) and of keys.
 */
import { utf8Bytes, violation, type Violation } from './rules.js';
import { MAX_ITEM_BYTES, R, type AttributeValue, type DynamoContext, type Item } from './dynamodb-rules.js';

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

export function checkValues(values: Item | undefined, where: 'item' | 'values'): Violation | undefined {
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

export function checkKey(key: Item | undefined, attrs?: readonly string[]): Violation | undefined {
  if (!key) return undefined;
  const k = emptyKeyOf(key, attrs);
  if (k === undefined) return undefined;
  return violation(
    R.emptyKey,
    `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${k}`,
  );
}

export function checkItem(table: string, item: Item | undefined, ctx: DynamoContext): Violation | undefined {
  if (!item) return undefined;
  if (itemSize(item) > MAX_ITEM_BYTES) return violation(R.itemTooLarge, 'Item size has exceeded the maximum allowed size');
  const attrs = ctx.keyAttributes(table);
  return (attrs && checkKey(item, attrs)) || checkValues(item, 'item');
}

export function keyOf(item: Item, attrs: readonly string[] | undefined): Item {
  if (!attrs) return item;
  return Object.fromEntries(attrs.filter((a) => a in item).map((a) => [a, item[a]!]));
}

export function keyId(table: string, key: Item): string {
  return JSON.stringify([table, Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}
