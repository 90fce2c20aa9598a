/**
 * What keeps a paid instance working when its agent goes away, and what a task may touch, on moto
 * with the instance runtime (test/support/instance-runtime.ts: systemd emulated, the real UserData
 * and the real agent bundle):
 *  - a reboot mid-task (every process of the instance killed, then the boot sequence again without
 *    UserData, which EC2 runs only on first boot): the enabled gq-agent service comes back, the
 *    task in flight runs again and succeeds once (checkInvariants), nothing else runs twice;
 *  - tasks run as the unprivileged task user (gq-task, here the host's nobody when the tests run as
 *    root) with their own HOME, no AWS credentials in their environment and the metadata service
 *    refused to them; with --task-aws-access they keep both.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, byTask, jobFile, runsOf, submit, task, untilDone } from './support/aws-faults.js';
import { statusJson, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';

const root = process.getuid?.() === 0;
/** Dummy keys in the instances' environment: a task must not see them unless it may. */
const KEY_ID = 'AKIAGQTESTTASKACCESS';

describeAws('instances on moto: reboot, task user', () => {
  let h: AwsHarness;

  beforeAll(async () => {
    h = (await startAwsHarness('instance-reboot', {
      jobPrefix: 'ir-',
      faultEnv: { AWS_ACCESS_KEY_ID: KEY_ID, AWS_SECRET_ACCESS_KEY: 'gq-test-secret-not-for-tasks' },
    }))!;
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('a reboot mid-task: the agent service comes back without UserData, the task runs again and succeeds once', async () => {
    const s = awsScenario(h, 'ir-reboot', 'every-task');
    const f = jobFile(s, [1, 2, 3].map((n) => task(s, n, 'sleep 4')));
    const r = await submit(s, f, ['--max-instances', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const running = await waitFor(
      'a task to run',
      async () => (await statusJson(s.job, h.env, true)).tasks.find((t: any) => t.state === 'RUNNING' && t.instance),
      60_000,
    );
    const id: string = running.instance;
    await waitFor('its command to start', async () => runsOf(s, running.task).length === 1, 10_000);
    const machine = h.runtime.machine(id);
    const startsBefore = machine.unit('gq-agent.service')!.starts.length;

    await h.runtime.reboot(id);
    expect(machine.boots).toBe(2);
    expect(machine.unit('gq-agent.service')).toMatchObject({ enabled: true, state: 'active', starts: [expect.any(Number)] });

    const done = await untilDone(s, 120_000);
    expect(done.counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 0, cancelled: 0 });
    const st = byTask(await statusJson(s.job, h.env, true));
    // The task in flight ran again once its lease ran out (attempt 2: on the rebooted instance, or on
    // a new one when that one had gone idle meanwhile) and once only to the end.
    expect(st[running.task]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
    expect(runsOf(s, running.task).map((l) => l.split(' ')[0])).toEqual(['1', '2']);
    expect(runsOf(s, running.task)[0]).toBe(`1 ${id}`);
    for (const n of [1, 2, 3].filter((x) => x !== running.task)) expect(runsOf(s, n)).toHaveLength(1);
    await awsInvariants(s);

    // UserData ran on the first boot only; the service, enabled for multi-user.target, at each boot.
    const log = readFileSync(join(machine.home, 'gq', 'userdata.log'), 'utf8');
    expect(log.match(/gq worker: job/g)).toHaveLength(1);
    expect(startsBefore).toBe(1);
    // The firewall rule does not survive a reboot: the service put it back.
    expect(machine.calls().filter((c) => c.startsWith('iptables -w -I'))).toHaveLength(2);
  }, 240_000);

  /** One task that reports who it runs as, what it sees of AWS, and whether the metadata service answers. */
  const probe =
    `t=$(curl -s -m 3 -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/api/token" && echo) || t=''; ` +
    `printf 'id,uid,home,keys,imds\\n1,%s,%s,%s,%s\\n' "$(id -u)" "$HOME" "$(env | grep -c '^AWS_ACCESS_KEY_ID=${KEY_ID}')" "\${t:+reachable}" > results.csv`;

  async function probeJob(job: string, args: string[]): Promise<Record<string, string>> {
    const s = awsScenario(h, job, 'every-task');
    const r = await submit(s, jobFile(s, [probe]), [...args, '--wait', '--json']);
    expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
    const out = join(s.dir, 'out');
    await awsInvariants(s);
    const rows = parse(readFileSync(join(out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(1);
    return rows[0]!;
  }

  const nobody = root ? execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim() : String(process.getuid?.());

  it('tasks run as the task user, own HOME, no AWS credentials, metadata service refused', async () => {
    const row = await probeJob('ir-user', []);
    if (root) expect(row.uid).toBe(nobody); // not root: the user switch is real
    else console.warn('instance-reboot: not root, so tasks run as this user (the switch itself is not exercised)');
    expect(row.uid).not.toBe('0');
    expect(row.home).toMatch(/\/gq\/work\/home$/);
    expect(row.keys).toBe('0');
    expect(row.imds).toBe(''); // the owner-match rule refused the connection
  }, 120_000);

  it('with --task-aws-access a task may use the instance role', async () => {
    const row = await probeJob('ir-access', ['--task-aws-access']);
    expect(row.uid).not.toBe('0');
    expect(row.keys).toBe('1');
    expect(row.imds).toBe('reachable');
  }, 120_000);
});
