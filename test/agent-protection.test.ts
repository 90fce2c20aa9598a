/**
 * Scale-in protection of a busy worker on AWS (moto + the instance runtime running the real agent
 * bundle): the instance is protected from scale-in while it runs a task, and unprotected once it
 * idles, before it leaves. Sampled from Auto Scaling's own view (DescribeAutoScalingGroups).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '../packages/common/src/aws/call-log.js';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, fleetGone, jobFile, submit, task } from './support/aws-faults.js';
import { describeAws } from './support/moto.js';

interface Sample {
  at: number;
  running: boolean;
  instances: { id: string; protected: boolean; state: string }[];
}

describeAws('AWS backend on moto: scale-in protection of a busy worker', () => {
  let h: AwsHarness;

  beforeAll(async () => {
    // With nothing left to run the worker leaves at once after its task (the early idle rule), so
    // its idle moment in the group is short: the call log says in which order it dropped its
    // protection and left.
    h = (await startAwsHarness('agent-protection', { jobPrefix: 'ap-', env: { GQ_IDLE: '26' }, callLog: join(mkdtempSync(join(tmpdir(), 'gq-ap-calls-')), 'calls.jsonl') }))!;
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('the instance is protected while it runs its task and unprotected after, while still in service', async () => {
    const s = awsScenario(h, 'ap-busy', 'every-task');
    const started = join(s.dir, 'started');
    const done = join(s.dir, 'done');
    const f = jobFile(s, [task(s, 1, `touch ${started}; sleep 6; touch ${done}`)]);
    const r = await submit(s, f, ['--max-instances', '1']);
    expect(r.code, r.stderr).toBe(0);

    const groupInstances = async () => {
      const out = await h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
      return (out.AutoScalingGroups ?? [])
        .filter((g) => g.AutoScalingGroupName?.startsWith(`gq-${s.job}-`))
        .flatMap((g) => g.Instances ?? [])
        .map((i) => ({ id: i.InstanceId!, protected: Boolean(i.ProtectedFromScaleIn), state: i.LifecycleState ?? '' }));
    };
    // Sample until the worker has left its group (or a minute and a half passed).
    const samples: Sample[] = [];
    const end = Date.now() + 90_000;
    while (Date.now() < end) {
      const running = existsSync(started) && !existsSync(done);
      const instances = await groupInstances();
      samples.push({ at: Date.now(), running, instances });
      if (existsSync(done) && instances.every((i) => i.state !== 'InService')) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    const inService = (x: Sample) => x.instances.filter((i) => i.state === 'InService');
    const whileRunning = samples.filter((x) => x.running && inService(x).length === 1);
    const afterTask = samples.filter((x) => !x.running && existsSync(done) && x.at > samples.find((y) => y.running)!.at && inService(x).length === 1);
    expect(whileRunning.length, 'samples while the task ran').toBeGreaterThan(3);
    // Protected for the whole run (the claim turns it on before the command starts)...
    expect(whileRunning.every((x) => inService(x)[0]!.protected), JSON.stringify(whileRunning)).toBe(true);
    // ...and unprotected once idle, while it is still in its group: the agent's last protection
    // call turns it off, and comes before the call that takes the instance out of its group (a
    // sample may or may not fall in that moment, so the order is read from the calls themselves).
    const calls = readFileSync(h.env.GQ_TEST_AWS_CALL_LOG!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CallRecord)
      .filter((r) => r.who !== 'cli' && (JSON.parse(r.who) as { job?: string }).job === s.job);
    const protections = calls.map((r, i) => ({ r, i })).filter(({ r }) => r.operation === 'SetInstanceProtection');
    const leave = calls.findIndex((r) => r.operation === 'TerminateInstanceInAutoScalingGroup');
    expect(protections.map(({ r }) => r.fields.ProtectedFromScaleIn), JSON.stringify(protections)).toEqual([true, false]);
    expect(leave, 'the agent took its instance out of its group').toBeGreaterThan(protections[1]!.i);
    // Once unprotected it stays so until it leaves (no task came): no sample shows it protected again.
    const firstOff = afterTask.findIndex((x) => !inService(x)[0]!.protected);
    if (firstOff >= 0) expect(afterTask.slice(firstOff).every((x) => !inService(x)[0]!.protected)).toBe(true);

    await awsInvariants(s);
    await fleetGone(s);
  }, 180_000);
});
