#!/usr/bin/env node
// bench/gq-counted: the real `gq` CLI, in this process, with gq's own call counter
// (createCallCounter of packages/common/src/aws/clients.ts, an SDK middleware) installed on every
// AWS SDK client it makes. At exit the counts are written as JSON to the file named first:
//
//   node bench/gq-counted.mjs /tmp/counts.json submit jobs.csv --backend aws ...
//   → {"counts": {"DynamoDB.TransactWriteItems": 22, ...}, "requests": {...}}
//
// The CLI builds its clients inside gq (makeAwsClients, and a CloudFormation client of its own),
// so the counter is installed from outside: each client class's `send` installs it on the client
// the first time (install is idempotent) and then sends as usual. The classes are the very ones
// gq imports (one copy of each SDK package in node_modules).
import { writeFileSync } from 'node:fs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { STSClient } from '@aws-sdk/client-sts';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { createCallCounter } from '../packages/common/dist/aws/clients.js';

const [out, ...args] = process.argv.slice(2);
if (!out || args.length === 0) {
  console.error('usage: node bench/gq-counted.mjs COUNTS.json GQ-ARGS...');
  process.exit(2);
}
const counter = createCallCounter();
const classes = [
  [SQSClient, 'SQS'],
  [DynamoDBClient, 'DynamoDB'],
  [DynamoDBDocumentClient, 'DynamoDB'],
  [S3Client, 'S3'],
  [AutoScalingClient, 'AutoScaling'],
  [EC2Client, 'EC2'],
  [STSClient, 'STS'],
  [CloudFormationClient, 'CloudFormation'],
];
for (const [C, service] of classes) {
  const send = C.prototype.send;
  Object.defineProperty(C.prototype, 'send', {
    configurable: true,
    writable: true,
    value: function countedSend(...a) {
      counter.install(this, service);
      return send.apply(this, a);
    },
  });
}
process.on('exit', () => {
  writeFileSync(out, JSON.stringify({ counts: counter.counts(), requests: counter.requests() }));
});
process.argv = [process.argv[0], 'gq', ...args];
await import('../packages/cli/dist/cli.js');
