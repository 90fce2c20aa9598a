/**
 * A violation as the service's own protocol answers it (what the SDK parses into a typed error):
 *   dynamodb     JSON 1.0: `{"__type":"com.amazon.coral.validate#ValidationException","message":...}`
 *   sqs          JSON 1.0, awsQueryCompatible: `__type` `com.amazonaws.sqs#<Code>` and the query code
 *                in `x-amzn-query-error: <code>;Sender` (the SDK names the error after it)
 *   s3           REST-XML: `<Error><Code>..</Code><Message>..</Message><RequestId/><HostId/></Error>`
 *   autoscaling  query: `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code>..</ErrorResponse>`
 *   ec2          EC2 query: `<Response><Errors><Error><Code>..</Code>..</Errors><RequestID/></Response>`
 */
import { randomUUID } from 'node:crypto';
import type { Violation } from './rules.js';

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const DYNAMODB_TYPES: Record<string, string> = {
  ValidationException: 'com.amazon.coral.validate#ValidationException',
};

export function errorResponse(v: Violation, requestId: string = randomUUID()): ErrorResponse {
  const { rule, message } = v;
  switch (rule.service) {
    case 'dynamodb':
      return {
        status: rule.status,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId },
        body: JSON.stringify({ __type: DYNAMODB_TYPES[rule.code] ?? `com.amazonaws.dynamodb.v20120810#${rule.code}`, message }),
      };
    case 'sqs':
      return {
        status: rule.status,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-requestid': requestId,
          'x-amzn-query-error': `${rule.queryCode ?? rule.code};Sender`,
        },
        body: JSON.stringify({ __type: `com.amazonaws.sqs#${rule.code}`, message }),
      };
    case 's3':
      return {
        status: rule.status,
        headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId },
        body:
          '<?xml version="1.0" encoding="UTF-8"?>\n' +
          `<Error><Code>${xml(rule.code)}</Code><Message>${xml(message)}</Message><RequestId>${requestId}</RequestId><HostId>strict-aws</HostId></Error>`,
      };
    case 'autoscaling':
      return {
        status: rule.status,
        headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
        body:
          '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">' +
          `<Error><Type>Sender</Type><Code>${xml(rule.code)}</Code><Message>${xml(message)}</Message></Error>` +
          `<RequestId>${requestId}</RequestId></ErrorResponse>`,
      };
    case 'ec2':
      return {
        status: rule.status,
        headers: { 'content-type': 'text/xml;charset=UTF-8' },
        body:
          '<?xml version="1.0" encoding="UTF-8"?>\n' +
          `<Response><Errors><Error><Code>${xml(rule.code)}</Code><Message>${xml(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
      };
  }
}
