/**
 * Slots on AWS (moto + the instance runtime running the real agent bundle from its UserData):
 * `--slots 3` sizes the group at ceil(tasks ÷ 3) instances, and one instance runs 3 tasks at once,
 * each in its own folder; a task that fails in one slot leaves the others alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, byTask, emulateEc2PowerOff, fleetGone, jobFile, submit, task } from './support/aws-faults.js';
import { statusJson } from './support/cli.js';
import { describeAws } from './support/moto.js';

describeAws('AWS backend on moto: slots', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    h = (await startAwsHarness('slots-aws', { jobPrefix: 'sl-' }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  it('--slots 3: one instance runs 3 tasks at once in separate folders; a failing one disturbs no other', async () => {
    const s = awsScenario(h, 'sl-three', 'every-task');
    // Each task notes its folder and its start and end times (ns), then runs on.
    const timed = (n: number, seconds: number, then = 'true') =>
      task(s, n, `echo "$PWD $(date +%s%N)" > ${s.runs}/s${n}; sleep ${seconds}; date +%s%N > ${s.runs}/e${n}; ${then}`);
    const f = jobFile(s, [timed(1, 4), timed(2, 1, 'exit 3'), timed(3, 4)]);
    const r = await submit(s, f, ['--slots', '3', '--retries', '0', '--wait', '--json']);
    const st = byTask(await statusJson(s.job, h.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    expect(st[2]).toMatchObject({ state: 'FAILED', attempts: 1, exitCode: 3 });
    expect(st[3]).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    expect(r.code).not.toBe(0); // a task failed

    // ceil(3 ÷ 3) = 1 instance, which ran all three.
    const mine = h.runtime.instances().filter((i) => i.group.startsWith(`gq-${s.job}-`));
    expect(mine).toHaveLength(1);
    const spans = [1, 2, 3].map((n) => {
      const [dir, start] = readFileSync(join(s.runs, `s${n}`), 'utf8').trim().split(' ');
      return { dir, start: Number(start), end: Number(readFileSync(join(s.runs, `e${n}`), 'utf8')) };
    });
    const firstEnd = Math.min(...spans.map((x) => x.end));
    for (const x of spans) expect(x.start).toBeLessThan(firstEnd);
    expect(new Set(spans.map((x) => x.dir)).size).toBe(3);
    await awsInvariants(s);
    await fleetGone(s);
  }, 200_000);
});
