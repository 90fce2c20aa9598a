/**
 * "Prove that nothing is lost" on AWS (moto + the instance runtime running the real agent
 * bundle): a message delivered again while its task still runs. Every instance of this file runs
 * with GQ_TEST_FAULT=skip:extend: the heartbeat renews the task's lease in DynamoDB but never the
 * message's visibility, so the message comes back while the task runs; the other instance
 * receives it, sees the live lease, and must hide it again rather than run it. Every scenario
 * ends with the three checks of checkInvariants.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, byTask, consoleLogs, emulateEc2PowerOff, fleetGone, jobFile, runsOf, submit, task } from './support/aws-faults.js';
import { statusJson } from './support/cli.js';
import { describeAws } from './support/moto.js';

const slow = process.env.GQ_QUICK ? it.skip : it;

describeAws('AWS backend on moto: duplicate delivery while the task runs', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    // The second instance's task (4 s) outlasts the first one's visibility (2 s, not extended): it is
    // there to receive the duplicate when it ends (an idle instance leaves at once while the other
    // is busy: nothing is left that it could run).
    h = (await startAwsHarness('faults-aws-dup', { jobPrefix: 'fd-', faultEnv: { GQ_TEST_FAULT: 'skip:extend' }, env: { GQ_IDLE: '8' } }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  slow('the duplicate is hidden again, never run twice', async () => {
    const s = awsScenario(h, 'fd-dup', 'every-task');
    const f = jobFile(s, [task(s, 1, 'sleep 8'), task(s, 2, 'sleep 4')]);
    const r = await submit(s, f, ['--visibility', '2s', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = byTask(await statusJson(s.job, h.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    expect(runsOf(s, 1)).toHaveLength(1);
    expect(runsOf(s, 2)).toHaveLength(1);
    // The duplicate delivery really happened, and was hidden again.
    expect(consoleLogs(s)).toMatch(/delivered again while its lease is held/);
    await awsInvariants(s);
    await fleetGone(s);
  }, 150_000);

  slow('a duplicated task whose attempt fails is retried once, with a fresh message', async () => {
    const s = awsScenario(h, 'fd-dup-fail', 'every-task');
    const f = jobFile(s, [task(s, 1, 'if [ "$GQ_ATTEMPT" = 1 ]; then sleep 8; echo first attempt fails >&2; exit 3; fi'), task(s, 2, 'sleep 4')]);
    const r = await submit(s, f, ['--visibility', '2s', '--retries', '1', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = byTask(await statusJson(s.job, h.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
    expect(runsOf(s, 1).map((l) => l.split(' ')[0])).toEqual(['1', '2']);
    const logs = consoleLogs(s);
    expect(logs).toMatch(/delivered again while its lease is held/);
    expect(logs).toMatch(/delivered again while the task ran; sending the task again/);
    expect(logs).not.toMatch(/internal error/);
    await awsInvariants(s);
    await fleetGone(s);
  }, 150_000);
});
