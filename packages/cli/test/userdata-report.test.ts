/**
 * The UserData's boot-failure report writes the status table's instance item: its PutItem body,
 * formatted by bash's printf as the script does, is the item putInstance writes (instanceItem),
 * whatever the detail holds. The whole boot against moto is in test/userdata.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { instanceItem, instanceSk, jobPk } from '@gq/common/aws/index';
import { bootFailurePutItem, REPORT_SLOTS } from '../src/userdata.js';

const SCRIPT = new URL('../boot/worker-boot.sh', import.meta.url);
/** The script's own json() (escapes a detail for a JSON string), taken from the script. */
const jsonFn = readFileSync(SCRIPT, 'utf8')
  .split('\n')
  .find((l) => l.startsWith('json() {'))!;

/** The body as the script makes it: `printf "$PI" ID ID NOW "$(json "$WHY")"`. */
function formatted(format: string, instance: string, now: string, why: string): unknown {
  const r = spawnSync('bash', ['-c', `${jsonFn}\nprintf "$1" "$2" "$2" "$3" "$(json "$4")"`, '_', format, instance, now, why], {
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

const unmarshalled = (item: Record<string, { S: string }>) => Object.fromEntries(Object.entries(item).map(([k, v]) => [k, v.S]));

describe('the boot-failure report', () => {
  it('writes the instance item putInstance writes, in state BOOT_FAILED, unless INSTALL_FAILED is there', () => {
    const format = bootFailurePutItem({ table: 'gq-status', job: 'job-1', instanceType: 'c5.large' });
    expect(format.match(/%s/g)).toHaveLength(REPORT_SLOTS.length);
    const now = '2026-12-01T10:00:00.000Z';
    const body = formatted(format, 'i-0abc', now, 'agent download failed') as {
      TableName: string;
      Item: Record<string, { S: string }>;
      ConditionExpression: string;
      ExpressionAttributeNames: Record<string, string>;
      ExpressionAttributeValues: Record<string, { S: string }>;
    };
    expect(body.TableName).toBe('gq-status');
    const rec = { job: 'job-1', instance: 'i-0abc', instanceType: 'c5.large', state: 'BOOT_FAILED' as const, heartbeatAt: now, detail: 'agent download failed' };
    expect(unmarshalled(body.Item)).toEqual(instanceItem(rec));
    expect(body.Item.pk).toEqual({ S: jobPk('job-1') });
    expect(body.Item.sk).toEqual({ S: instanceSk('i-0abc') });
    expect(body).toMatchObject({
      ConditionExpression: 'attribute_not_exists(#s) OR #s <> :f',
      ExpressionAttributeNames: { '#s': 'state' },
      ExpressionAttributeValues: { ':f': { S: 'INSTALL_FAILED' } },
    });
  });

  it('keeps any detail and any printf-special character of the names as they are', () => {
    const why = 'GET s3://b/k: HTTP 403 "denied" 100% \\ & $(x) %s';
    const format = bootFailurePutItem({ table: 'a%sb\\nc', job: 'j%d', instanceType: 'c5.large' });
    const body = formatted(format, 'i-1', 'now', why) as { TableName: string; Item: Record<string, { S: string }> };
    expect(body.TableName).toBe('a%sb\\nc');
    expect(body.Item.pk).toEqual({ S: jobPk('j%d') });
    expect(body.Item.detail).toEqual({ S: why });
  });
});
