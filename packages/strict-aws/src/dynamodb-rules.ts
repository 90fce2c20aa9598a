/**
 * DynamoDB's documented limits that the strict layer enforces: the rule table (ids, messages, doc
 * pages), the size and count limits, and the shapes shared by its checks.
 */
import { defineRules } from './rules.js';

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
  consistentReadOnIndex: { id: 'dynamodb.consistent-read-on-index', summary: 'a strongly consistent Query of a global secondary index', doc: `${GUIDE}/GSI.html`, ...V },
});
export const R = DYNAMODB_RULES;

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

export type AttributeValue = Record<string, unknown>;
export type Item = Record<string, AttributeValue>;
