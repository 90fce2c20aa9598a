/**
 * @gq/strict-aws: the strict AWS layer of gq's test harness (see proxy.ts) and its pure validators,
 * one module per service. Every rule is declared data (rules.ts) citing the AWS page it comes from.
 */
export { startStrictLayer, type StrictLayer, type StrictLayerOptions } from './proxy.js';
export type { Rejection, Rule, Service, Violation } from './rules.js';
export { errorResponse, type ErrorResponse } from './errors.js';
export { ContentionModel, contentionFromEnv, type ContentionAnswer, type ContentionHold, type ContentionVerdict, type ContentionOptions, type ContentionStats } from './contention.js';
export { DYNAMODB_RULES, validateDynamoDB, expressionRefs, itemSize, type DynamoContext } from './dynamodb.js';
export { SQS_RULES, validateSqs, messageSize } from './sqs.js';
export { S3_RULES, validateS3, validateCompleteMultipart, parseS3, S3Uploads } from './s3.js';
export { AUTOSCALING_RULES, validateAutoScaling, type AutoScalingContext, type GroupSizes } from './autoscaling.js';
export { EC2_RULES, validateEc2 } from './ec2.js';
export { RESERVED_WORDS } from './reserved-words.js';

import { AUTOSCALING_RULES } from './autoscaling.js';
import { DYNAMODB_RULES } from './dynamodb.js';
import { EC2_RULES } from './ec2.js';
import type { Rule } from './rules.js';
import { S3_RULES } from './s3.js';
import { SQS_RULES } from './sqs.js';

/** Every rule of the layer. */
export const ALL_RULES: readonly Rule[] = [DYNAMODB_RULES, SQS_RULES, S3_RULES, AUTOSCALING_RULES, EC2_RULES].flatMap((m) => Object.values(m));
