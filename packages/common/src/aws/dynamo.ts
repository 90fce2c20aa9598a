/** The DynamoDB StatusStore, now in dynamo/ (kept so that `aws/dynamo.js` stays importable). */
export * from './dynamo/index.js';
