/**
 * Spot without lost work, on moto with the real agent (instances booted from their UserData by
 * the instance runtime, the Spot notice raised through the metadata emulator): a task that counts
 * from its checkpoint is interrupted, its checkpoint is saved within the two minutes, and the next
 * attempt, on a replacement instance, resumes from it. The interruption is counted, not charged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keys } from '../packages/common/src/index.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, emulateEc2PowerOff, fleetGone, jobFile, spotAndGivenBack, submit, task, TYPE, untilDone } from './support/aws-faults.js';
import { groupName } from '../packages/common/src/aws/names.js';
import { countedRange, countingTask } from './support/counting-task.js';
import { gq, statusJson, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';

describeAws('AWS backend on moto: Spot interruptions with a checkpoint', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    h = (await startAwsHarness('spot-aws', { jobPrefix: 'sp-' }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  it('the checkpoint is saved on the notice and the next attempt counts on from it', async () => {
    const s = awsScenario(h, 'sp-ckpt', 'every-task');
    const starts = join(s.runs, 'starts');
    const progress = join(s.runs, 'progress');
    const f = jobFile(s, [countingTask({ to: 20, stepS: 0.2, starts, progress })]);
    const r = await submit(s, f, ['--visibility', '5s', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const store = h.backend.status;
    const counted = () => (existsSync(progress) ? Number(readFileSync(progress, 'utf8')) : 0);
    await waitFor('the first attempt to count to 3', async () => counted() >= 3, 90_000, 100);
    const victim = (await store.getTask(s.job, 1))!.instance!;
    const { task: back, ms } = await spotAndGivenBack(s, 1, victim, 60_000);
    // Within EC2's two minutes, with room: the notice is seen in 2 s, the task stops in 10 s at most.
    expect(ms).toBeLessThan(20_000);
    expect(back).toMatchObject({ attempts: 0, interruptions: 1, checkpointKey: keys.taskCheckpoint(s.job, 1) });
    expect(await h.backend.artifacts.exists(keys.taskCheckpoint(s.job, 1))).toBe(true);
    expect(h.runtime.consoleLog(victim)).toMatch(/checkpoint saved/);

    // The group replaces the reclaimed instance; the replacement restores the checkpoint.
    const done = await waitFor('task 1 to finish elsewhere', async () => {
      const t = await store.getTask(s.job, 1);
      return t?.state === 'SUCCEEDED' ? t : undefined;
    }, 120_000, 500);
    expect(done).toMatchObject({ attempts: 1, interruptions: 1 });
    expect(done.instance).toBeUndefined();
    const { start, end } = countedRange((await h.backend.artifacts.getBytes(done.resultKey!)).toString('utf8'));
    expect(start).toBeGreaterThanOrEqual(3); // resumed, not started over
    expect(end).toBe(20);
    expect(readFileSync(starts, 'utf8').trim().split('\n')).toEqual(['0', String(start)]);
    // gq status: the interruption per instance type, and on the task.
    const st = await statusJson(s.job, h.env, true);
    expect(st.instanceTypes[TYPE].interruptions).toBe(1);
    expect(st.tasks[0]).toMatchObject({ attempts: 1, interruptions: 1, checkpointKey: keys.taskCheckpoint(s.job, 1) });
    expect((await gq(['status', s.job], h.env)).stdout).toMatch(/1 Spot interruption/);
    await awsInvariants(s);
    await fleetGone(s);
  }, 240_000);

  it('--spot-alternatives: stand-in types in the group\'s overrides; one that is too small is refused before anything is made', async () => {
    const s = awsScenario(h, 'sp-standin', 'every-task');
    const f = jobFile(s, [task(s, 1)]);
    const small = await submit(s, f, ['--spot', '--spot-alternatives', `${TYPE}=t3.nano`, '--json']);
    expect(small.code).toBe(1);
    expect(small.stderr).toMatch(/t3\.nano has .* memory/);
    expect(await h.backend.status.getJob(s.job)).toBeUndefined();

    const r = await submit(s, f, ['--spot', '--spot-alternatives', `${TYPE}=t3a.micro,t3.small`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    // The market is on the job: a later gq command that starts workers needs no --spot.
    expect((await h.backend.status.getJob(s.job))?.market).toBe('spot');
    const out = await h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName(s.job, TYPE)] }));
    const overrides = out.AutoScalingGroups?.[0]?.MixedInstancesPolicy?.LaunchTemplate?.Overrides;
    expect(overrides?.map((o) => o.InstanceType)).toEqual([TYPE, 't3a.micro', 't3.small']);
    // A stand-in's worker serves the group's own type (its queue): the task runs.
    expect((await untilDone(s)).counts).toMatchObject({ succeeded: 1 });
    await awsInvariants(s);
    await fleetGone(s);
  }, 180_000);
});
