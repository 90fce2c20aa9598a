/**
 * DynamoDB expression rules (pure): the placeholders and bare attribute names of an expression,
 * and the checks on a set of expressions with their ExpressionAttributeNames / Values (defined,
 * used, not reserved words).
 */
import { RESERVED_WORDS } from './reserved-words.js';
import { violation, type Violation } from './rules.js';
import { R, type Item } from './dynamodb-rules.js';
import { checkValues } from './dynamodb-items.js';

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

export interface ExpressionSet {
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
