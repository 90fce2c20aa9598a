/** The rules as a whole: unique ids, each citing an AWS page, each in the test README's table. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_RULES, errorResponse } from '../src/index.js';

describe('strict rules', () => {
  it('have unique ids, AWS doc links and 4xx statuses', () => {
    const ids = ALL_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of ALL_RULES) {
      expect(r.id.startsWith(`${r.service}.`)).toBe(true);
      expect(r.doc).toMatch(/^https:\/\/docs\.aws\.amazon\.com\//);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
  });

  it('are all listed in test/README.md with their doc link', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../test/README.md'), 'utf8');
    for (const r of ALL_RULES) expect(readme, r.id).toContain(`| \`${r.id}\` |`);
    for (const r of ALL_RULES) expect(readme, r.id).toContain(`(${r.doc})`);
  });

  it('render in each service’s protocol', () => {
    const bySvc = Object.fromEntries(ALL_RULES.map((r) => [r.service, r]));
    expect(JSON.parse(errorResponse({ rule: bySvc.dynamodb!, message: 'm' }).body)).toEqual({ __type: 'com.amazon.coral.validate#ValidationException', message: 'm' });
    expect(errorResponse({ rule: bySvc.sqs!, message: 'm' }).headers['x-amzn-query-error']).toMatch(/;Sender$/);
    expect(errorResponse({ rule: bySvc.s3!, message: 'a<b' }).body).toContain('<Message>a&lt;b</Message>');
    expect(errorResponse({ rule: bySvc.autoscaling!, message: 'm' }).body).toContain('<Type>Sender</Type><Code>ValidationError</Code>');
    expect(errorResponse({ rule: bySvc.ec2!, message: 'm' }).body).toContain('<Response><Errors><Error><Code>');
  });
});
