/**
 * Tasks that must not strand, AWS backend on moto (instances booted from their real UserData by
 * the instance runtime). The job must finish with no `gq` command after the submit (a gq
 * command's reconcile restarts workers and would hide the fault): progress is read from the
 * status table directly.
 * - the last worker stays while a failed attempt waits out its retry delay elsewhere;
 * - the groups, launch templates, queues and IAM role of a finished job are removed without
 *   `gq clean` (by `--wait` seeing it finish), and `gq retry` makes them again;
 * - a message lost from the queue is sent again by the worker that stays. SQS drops a message
 *   after the queue's MessageRetentionPeriod; moto checks the period only when it hands out a
 *   message and keeps counting the expired one (so the queue never looks empty), so the loss is
 *   emulated by receiving the message and deleting it.
 */
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeLaunchTemplatesCommand } from '@aws-sdk/client-ec2';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deadLetterQueueName, jobRoleName, queueName } from '../packages/common/src/aws/names.js';
import type { JobRecord } from '../packages/common/src/index.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, fleetGone, jobFile, runsOf, submit, task, TYPE, type AwsScenario } from './support/aws-faults.js';
import { gq, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';

async function finished(s: AwsScenario, timeoutMs = 90_000): Promise<JobRecord> {
  return waitFor(
    `job ${s.job} to finish by itself`,
    async () => {
      const j = await s.h.backend.status.getJob(s.job);
      return j && j.counts.queued + j.counts.running === 0 ? j : undefined;
    },
    timeoutMs,
    500,
  );
}

describeAws('AWS backend on moto: tasks that must not strand', () => {
  let h: AwsHarness;

  beforeAll(async () => {
    h = (await startAwsHarness('strand-aws', { jobPrefix: 'sa-' }))!;
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  it.concurrent('the last worker stays while a failed attempt waits for its retry elsewhere; the job then finishes', async () => {
    const s = awsScenario(h, 'sa-retry', 'every-task');
    // The retry is given back with a 2 s delay, longer than the 1 s idle period.
    const f = jobFile(s, [task(s, 1, 'sleep 3; [ "$GQ_ATTEMPT" -gt 1 ] || exit 3'), task(s, 2)]);
    const r = await submit(s, f, ['--idle', '1s', '--retries', '1', '--max-instances', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = await finished(s);
    expect(j.counts).toEqual({ queued: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 });
    expect(runsOf(s, 1).map((l) => l.split(' ')[0])).toEqual(['1', '2']);
    await fleetGone(s);
    await awsInvariants(s);
  }, 150_000);

  it.concurrent('a message lost from the queue is sent again by the worker that stays', async () => {
    const s = awsScenario(h, 'sa-lost', 'every-task');
    const f = jobFile(s, [task(s, 1, 'sleep 2'), task(s, 2, 'sleep 2')]);
    const r = await submit(s, f, ['--idle', '1s', '--max-instances', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const q = await h.backend.queues.open(s.job, TYPE);
    const [m] = await waitFor('a visible message', async () => {
      const got = await q.receive({ max: 1, waitSeconds: 1, visibilitySeconds: 600 });
      return got.length > 0 ? got : undefined;
    });
    await q.delete(m!.receipt);
    const j = await finished(s);
    expect(j.counts.succeeded).toBe(2);
    expect(runsOf(s, m!.task)).toHaveLength(1);
    await fleetGone(s);
    await awsInvariants(s);
  }, 150_000);

  it.concurrent('the groups, launch templates, queues and role of a finished job are removed; gq retry makes them again', async () => {
    const s = awsScenario(h, 'sa-gone', 'every-task');
    const once = `${s.dir}/failed-once`;
    const f = jobFile(s, [task(s, 1), task(s, 2, `[ -e ${once} ] || { touch ${once}; exit 3; }`)]);
    const r = await submit(s, f, ['--retries', '0', '--max-instances', '2', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(1); // one task failed
    const c = h.backend.clients;
    const iam = new IAMClient({ region: 'us-east-1', endpoint: h.moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    const left = async () => {
      const groups = ((await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? []).filter((g) =>
        g.AutoScalingGroupName?.startsWith(`gq-${s.job}-`),
      );
      const templates = ((await c.ec2.send(new DescribeLaunchTemplatesCommand({}))).LaunchTemplates ?? []).filter((t) =>
        t.LaunchTemplateName?.startsWith(`gq-${s.job}-`),
      );
      const queues: string[] = [];
      for (const name of [queueName(s.job, TYPE), deadLetterQueueName(s.job, TYPE)]) {
        if (await c.sqs.send(new GetQueueUrlCommand({ QueueName: name })).then(() => true, () => false)) queues.push(name);
      }
      const role = await iam.send(new GetRoleCommand({ RoleName: jobRoleName(s.job, 'us-east-1') })).then(() => true, () => false);
      return { groups: groups.length, templates: templates.length, queues, role };
    };
    try {
      expect(await left()).toEqual({ groups: 0, templates: 0, queues: [], role: false });
      // Status and results stay (gq clean removes those).
      expect((await h.backend.status.getJob(s.job))?.counts).toMatchObject({ succeeded: 1, failed: 1 });
      const rr = await gq(['retry', s.job, '--failed', '--wait', '--json'], h.env, { timeoutMs: 180_000 });
      expect(rr.stderr).not.toMatch(/internal error/);
      expect(rr.code, rr.stderr).toBe(0);
      expect((await h.backend.status.getJob(s.job))?.counts).toMatchObject({ succeeded: 2, failed: 0 });
      expect(await left()).toEqual({ groups: 0, templates: 0, queues: [], role: false });
      await awsInvariants(s);
    } finally {
      iam.destroy();
    }
  }, 240_000);
});
