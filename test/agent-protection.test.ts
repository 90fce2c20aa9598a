/**
 * Scale-in protection of a busy worker on AWS (moto + the instance runtime running the real agent
 * bundle): the instance is protected from scale-in while it runs a task, and unprotected once it
 * idles, before it leaves. Sampled from Auto Scaling's own view (DescribeAutoScalingGroups).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
    // The first receive after a task is a 20 s long poll; an idle period of 26 s leaves the worker
    // about 6 s idle (and unprotected) in its group before it leaves.
    h = (await startAwsHarness('agent-protection', { jobPrefix: 'ap-', env: { GQ_IDLE: '26' } }))!;
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
    // ...and unprotected once idle, while it is still in its group.
    expect(afterTask.some((x) => !inService(x)[0]!.protected), JSON.stringify(afterTask.slice(-5))).toBe(true);
    // Once unprotected it stays so until it leaves (no task came).
    const firstOff = afterTask.findIndex((x) => !inService(x)[0]!.protected);
    expect(afterTask.slice(firstOff).every((x) => !inService(x)[0]!.protected)).toBe(true);

    await awsInvariants(s);
    await fleetGone(s);
  }, 180_000);
});
