/**
 * The on-demand fallback of a Spot job, on moto with the real agent (instances booted from their
 * UserData by the instance runtime, Spot notices raised through the metadata emulator): with
 * --spot-interruptions 2, a task interrupted twice on Spot runs its third attempt on the type's
 * on-demand group (gq-<job>-<type>-od, made at desired 0 by gq submit and raised by the Spot
 * agent that sent the task there: no gq command runs in between), uncharged by the
 * interruptions; the job then finishes with nothing of either pool left behind.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { groupName, queueName } from '../packages/common/src/aws/names.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, emulateEc2PowerOff, fleetGone, jobFile, runsOf, spotAndGivenBack, submit, task, TYPE, untilDone } from './support/aws-faults.js';
import { gq, statusJson, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';
import { agentPrincipal, collectSeen, evaluate, readKeyPolicy, readPolicy, toRequests } from './support/iam-eval.js';
import type { CallRecord } from '../packages/common/src/aws/call-log.js';

describeAws('AWS backend on moto: a Spot job falls back to on-demand', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    h = (await startAwsHarness('spot-od', { jobPrefix: 'od-', callLog: join(mkdtempSync(join(tmpdir(), 'gq-od-calls-')), 'calls.jsonl') }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  it('after 2 interruptions the third attempt runs on the on-demand group; nothing is left', async () => {
    const s = awsScenario(h, 'od-fallback', 'every-task');
    const go = join(s.dir, 'go');
    // Runs until the test lets it finish (after the second interruption).
    const f = jobFile(s, [task(s, 1, `while [ ! -f ${go} ]; do sleep 0.2; done`)]);
    const r = await submit(s, f, ['--spot', '--spot-interruptions', '2', '--visibility', '5s', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const store = h.backend.status;
    const c = h.backend.clients;
    expect((await store.getJob(s.job))?.spotInterruptions).toBe(2);
    // The on-demand queue exists from the start (the agent may send to it, not create it), empty.
    const odUrl = (await c.sqs.send(new GetQueueUrlCommand({ QueueName: queueName(s.job, TYPE, 'on-demand') }))).QueueUrl!;
    const odAttrs = (await c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: odUrl, AttributeNames: ['All'] }))).Attributes ?? {};
    expect(odAttrs.SqsManagedSseEnabled).toBe('true');
    // So does the on-demand group, at 0 (an agent may raise it, not create it).
    const odGroup = async () => (await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName(s.job, TYPE, 'on-demand')] }))).AutoScalingGroups![0]!;
    expect(await odGroup()).toMatchObject({ DesiredCapacity: 0, MinSize: 0, MaxSize: 2 });

    const runningOn = async (not: readonly string[]) =>
      waitFor('task 1 to run on a new instance', async () => {
        const t = await store.getTask(s.job, 1);
        return t?.state === 'RUNNING' && t.instance && !not.includes(t.instance) && runsOf(s, 1).length > not.length ? t.instance : undefined;
      }, 90_000, 200);
    const first = await runningOn([]);
    expect((await spotAndGivenBack(s, 1, first, 60_000)).task).toMatchObject({ state: 'QUEUED', attempts: 0, interruptions: 1 });
    // The Spot group replaces the reclaimed instance; the task goes back to Spot the first time.
    const second = await runningOn([first]);
    expect(groupOfInstance(second)).toBe(groupName(s.job, TYPE));
    expect((await spotAndGivenBack(s, 1, second, 60_000)).task).toMatchObject({ state: 'QUEUED', attempts: 0, interruptions: 2 });
    // The second Spot agent raised the on-demand group for its queue (one task: 1 of MaxSize 2);
    // the task runs there with no gq command after submit (only the store is read here).
    const third = await waitFor('task 1 to run on the on-demand group', async () => {
      const t = await store.getTask(s.job, 1);
      return t?.state === 'RUNNING' && t.instance && ![first, second].includes(t.instance) ? t.instance : undefined;
    }, 120_000, 500);
    expect(groupOfInstance(third)).toBe(groupName(s.job, TYPE, 'on-demand'));
    expect(h.runtime.consoleLog(second).split('\n').find((l) => l.includes('raised the on-demand group'))).toMatch(/"desired":1\b/);
    expect((await odGroup()).DesiredCapacity).toBe(1);
    // The on-demand group: on-demand only (no Spot policy), tagged as the job's (the agent's role
    // is scoped by gq:job), and its template asks for IMDSv2 and starts the agent on the od queue.
    const g = await odGroup();
    expect(g.MixedInstancesPolicy).toBeUndefined();
    expect(g.Tags?.find((x) => x.Key === 'gq:job')?.Value).toBe(s.job);
    const lt = (await c.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: groupName(s.job, TYPE, 'on-demand'), Versions: ['$Latest'] }))).LaunchTemplateVersions![0]!;
    expect(lt.LaunchTemplateData?.MetadataOptions?.HttpTokens).toBe('required');
    expect(Buffer.from(lt.LaunchTemplateData!.UserData!, 'base64').toString('utf8')).toMatch(/ OD=--on-demand /);
    // gq status names the on-demand worker as such.
    expect((await gq(['status', s.job], h.env)).stdout).toContain(`${third} (${TYPE}, on-demand): BUSY`);
    writeFileSync(go, '');

    const done = await untilDone(s, 120_000);
    expect(done.counts).toMatchObject({ succeeded: 1, failed: 0 });
    const t = (await store.getTask(s.job, 1))!;
    // Uncharged: one attempt for three starts (two on Spot, the last on on-demand).
    expect(t).toMatchObject({ state: 'SUCCEEDED', attempts: 1, interruptions: 2, lastInstance: third });
    expect(runsOf(s, 1)).toHaveLength(3);
    // The task's history says where each attempt ran and how it ended.
    expect(t.history).toMatchObject([
      { instance: first, lifecycle: 'spot', outcome: 'interrupted' },
      { instance: second, lifecycle: 'spot', outcome: 'interrupted' },
      { instance: third, lifecycle: 'on-demand', outcome: 'succeeded', instanceType: TYPE },
    ]);
    const records = await store.listInstances(s.job);
    const rec = (id: string) => records.find((i) => i.instance === id);
    expect(rec(first)).toMatchObject({ lifecycle: 'spot' });
    expect(rec(second)).toMatchObject({ lifecycle: 'spot' });
    expect(rec(third)).toMatchObject({ lifecycle: 'on-demand', pool: 'on-demand' });
    expect(h.runtime.consoleLog(second)).toMatch(/the next attempt runs on on-demand/);

    const st = await statusJson(s.job, h.env, true);
    expect(st.instanceTypes[TYPE]).toMatchObject({ interruptions: 2, movedToOnDemand: 1 });
    expect((await gq(['status', s.job], h.env)).stdout).toMatch(/1 task\(s\) moved to on-demand after 2 Spot interruptions/);
    await awsInvariants(s);
    await fleetGone(s);
    // The second Spot instance sent its only task to on-demand and left its group (with the
    // decrement): no third Spot instance was launched for a task that no longer needs one.
    expect(h.runtime.instances().filter((i) => i.group === groupName(s.job, TYPE)).map((i) => i.id)).toEqual([first, second]);

    // Once every worker has left, the next look removes both pools' groups, templates and queues.
    await waitFor('the job\'s groups, templates and queues to be removed', async () => {
      await gq(['status', s.job], h.env);
      const groups = (await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? [];
      const lts = (await c.ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: [s.job] }] }))).LaunchTemplates ?? [];
      const queues = (await c.sqs.send(new ListQueuesCommand({ QueueNamePrefix: `gq-${s.job}-` }))).QueueUrls ?? [];
      return groups.every((x) => !x.AutoScalingGroupName?.startsWith(`gq-${s.job}-`)) && lts.length === 0 && queues.length === 0;
    }, 60_000, 1000);
    expect(existsSync(go)).toBe(true);

    // Every AWS call of this job's agents, the raise included, is allowed by the deployed agent
    // policy and its boundary (IAM evaluated as in aws-e2e.test.ts; moto enforces none).
    const calls = readFileSync(h.env.GQ_TEST_AWS_CALL_LOG!, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CallRecord);
    const iam = new IAMClient({ region: 'us-east-1', endpoint: h.moto.endpoint });
    const policies = {
      agent: await readPolicy(iam, h.outputs.jobAgentPolicyArn),
      boundary: await readPolicy(iam, h.outputs.jobRoleBoundaryArn),
      user: undefined,
      key: await readKeyPolicy(h.moto.endpoint, h.outputs.kmsKeyArn!, 'us-east-1'),
    };
    iam.destroy();
    const account = { account: '123456789012', region: 'us-east-1', bucket: h.bucket, table: h.table, kmsKeyArn: h.outputs.kmsKeyArn!, stackId: '', jobRolePath: h.outputs.jobRolePath };
    const seen = collectSeen(calls);
    const agentCalls = calls.filter((r) => r.who !== 'cli' && (JSON.parse(r.who) as { job?: string }).job === s.job);
    const requests = agentCalls.flatMap((r) => toRequests(r, account, seen));
    expect(requests.filter((r) => r.action === 'autoscaling:SetDesiredCapacity').map((r) => r.resource)).toEqual([expect.stringMatching(new RegExp(`autoScalingGroupName/${groupName(s.job, TYPE, 'on-demand')}$`))]);
    const refused: string[] = [];
    for (const req of new Map(requests.map((r) => [JSON.stringify([r.action, r.resource, r.context]), r])).values()) {
      const v = await evaluate(agentPrincipal(policies, account.account, account.region, s.job), req, account.account, policies.key);
      if (v.result !== 'Allowed') refused.push(`${req.action} ${req.resource} ${JSON.stringify(req.context)} (${req.origin}): ${v.result}${v.errors ? ` ${v.errors}` : ''}`);
    }
    expect(refused).toEqual([]);
  }, 300_000);

  function groupOfInstance(id: string): string | undefined {
    return h.runtime.instances().find((i) => i.id === id)?.group;
  }
});
