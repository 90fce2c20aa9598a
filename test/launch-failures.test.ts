/**
 * When instances do not start (AWS backend on moto, the CLI as a subprocess):
 *
 *  - Launches that AWS refuses. moto launches every instance it is asked for and answers
 *    DescribeScalingActivities with nothing, so the fault proxy answers it, for this file's
 *    "lf-" groups, with failed activities in the Auto Scaling API's own XML and AWS's own
 *    messages (packages/common/test/fixtures/launch-messages.ts), one job per cause. The "lf-"
 *    instances that moto starts are never booted (the runtime boots only "bl-" groups) and stay
 *    below the boot deadline: what gq sees is the refusal. `gq status` (text and --json) says
 *    "not starting: <AWS's reason>" with the advice, and `gq submit --wait` ends with exit 1 and
 *    the reason within a bounded time.
 *  - A boot loop. The instances of the "bl-" job boot from their real UserData (instance
 *    runtime), but the proxy refuses their every call (S3: no such bucket, DynamoDB and Auto
 *    Scaling: access denied), so the boot fails and cannot report or leave its group; as on EC2
 *    (emulateEc2PowerOff) the instance then ends and Auto Scaling replaces it. gq records each
 *    silent boot with the reason from the console output (GetConsoleOutput, answered by the proxy
 *    from the runtime's console log), stops the group at 0 after bootFailures (3) boots, and
 *    `--wait` ends with that reason.
 */
import { randomUUID } from 'node:crypto';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupName } from '../packages/common/src/aws/names.js';
import { LAUNCH_MESSAGES, type LaunchMessage } from '../packages/common/test/fixtures/launch-messages.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsScenario, emulateEc2PowerOff, jobFile, submit, task, TYPE } from './support/aws-faults.js';
import { gq, statusJson } from './support/cli.js';
import {
  consoleOutputXml,
  queryParams,
  scalingActivitiesXml,
  serviceError,
  startFaultProxy,
  type ActivityXml,
  type FaultProxy,
} from './support/fault-proxy.js';
import { describeAws } from './support/moto.js';

/** One message per cause (the first of each in the fixtures). */
const CAUSES: LaunchMessage[] = LAUNCH_MESSAGES.filter((m, i) => LAUNCH_MESSAGES.findIndex((x) => x.cause === m.cause) === i);

/** Failed launch activities of a group, newest first, `minutesAgo` each. */
function failedActivities(group: string, message: string, minutesAgo: number[]): ActivityXml[] {
  return minutesAgo.map((m) => {
    const start = new Date(Date.now() - m * 60_000);
    return {
      ActivityId: randomUUID(),
      AutoScalingGroupName: group,
      Description: `Launching a new EC2 instance.  Status Reason: ${message}`,
      Cause: `At ${start.toISOString().slice(0, 19)}Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 0 to 1.`,
      StartTime: start,
      EndTime: new Date(start.getTime() + 1000),
      StatusCode: 'Failed',
      StatusMessage: message,
      Progress: 100,
      Details: '{"Subnet ID":"subnet-0123456789abcdef0","Availability Zone":"us-east-1a"}',
    };
  });
}

/** GQ_QUICK: one refused cause (the unit tests cover every message) and the boot loop. */
const slow = process.env.GQ_QUICK ? it.skip : it;
/**
 * The refused causes run side by side (one job and group each; what they wait for is gq's
 * periodic look at the groups, not the CPU): a fifth of the time they took one after another.
 */
const causeTest = (first: boolean) => (first ? it.concurrent : process.env.GQ_QUICK ? it.skip : it.concurrent);

/** What Auto Scaling appends to EC2's reason, which gq leaves out. */
const reasonOf = (m: string) => m.replace(/\s*Launching EC2 instance failed\.?$/, '');

describeAws('AWS backend on moto: instances that do not start', () => {
  let proxy: FaultProxy;
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;
  /** Group name → the activities the proxy answers for it. */
  const refusals = new Map<string, () => ActivityXml[]>();
  /** Whether the instances' own calls are refused (the boot-loop test). */
  let instancesCutOff = false;
  /** Group name → errors to answer its next CreateAutoScalingGroup calls with (eventual consistency). */
  const notYet = new Map<string, string[]>();

  beforeAll(async () => {
    proxy = await startFaultProxy();
    h = (await startAwsHarness('launch-failures', {
      jobPrefix: 'bl-',
      endpoint: (m) => {
        proxy.setUpstream(m.endpoint);
        return proxy.url;
      },
    }))!;
    proxy.answer({
      services: ['autoscaling', 'ec2', 's3', 'dynamodb'],
      answer(r) {
        // Instances sign with their IMDS credentials (ASIA...); the CLI and the runtime with "testing".
        if (instancesCutOff && r.client.startsWith('ASIA')) {
          if (r.service === 's3') return serviceError('s3', 404, 'NoSuchBucket', 'The specified bucket does not exist');
          if (r.service === 'dynamodb') return serviceError('dynamodb', 400, 'AccessDeniedException', 'User is not authorized to perform: dynamodb:PutItem');
          if (r.service === 'autoscaling') return serviceError('autoscaling', 403, 'AccessDenied', 'User is not authorized to perform: autoscaling:TerminateInstanceInAutoScalingGroup');
        }
        if (r.service !== 'autoscaling' && r.service !== 'ec2') return undefined;
        const q = queryParams(r.body);
        const pending = q.Action === 'CreateAutoScalingGroup' ? notYet.get(q.AutoScalingGroupName ?? '') : undefined;
        if (pending?.length) return serviceError('autoscaling', 400, 'ValidationError', pending.shift()!);
        if (q.Action === 'DescribeScalingActivities') {
          const activities = refusals.get(q.AutoScalingGroupName ?? '');
          return activities ? scalingActivitiesXml(activities()) : undefined;
        }
        if (q.Action === 'GetConsoleOutput' && q.InstanceId) return consoleOutputXml(q.InstanceId, h.runtime.consoleLog(q.InstanceId));
        return undefined;
      },
    });
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
    await proxy?.close();
  });

  for (const [n, m] of CAUSES.entries()) {
    causeTest(n === 0)(`launch refused (${m.cause}): gq status says why and what to do, --wait ends with the reason`, async () => {
      const s = awsScenario(h, `lf-${m.cause}`, 'every-task');
      // A transient cause counts only once it has lasted 10 minutes: these failures are older.
      const ago = m.cause === 'instance-profile' ? [11, 12, 13] : [1, 2, 3];
      refusals.set(groupName(s.job, TYPE), () => failedActivities(groupName(s.job, TYPE), m.message, ago));
      const t0 = Date.now();
      const r = await submit(s, jobFile(s, [task(s, 1)]), ['--wait', '--json'], 60_000);
      const ms = Date.now() - t0;
      console.log(`${m.cause}: submit --wait ended with ${r.code} after ${ms} ms`);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`gq: Instances of ${TYPE} are not starting: ${reasonOf(m.message)}`);
      expect(r.stderr).toMatch(/3 failed launch\(es\) since/);
      expect(r.stderr).toMatch(/hint: .{40,}/);
      expect(ms).toBeLessThan(30_000);

      const st = await statusJson(s.job, h.env);
      expect(st.instanceTypes[TYPE].launchProblem).toMatchObject({
        cause: m.cause,
        reason: reasonOf(m.message),
        failedLaunches: 3,
        transient: m.cause === 'instance-profile',
      });
      expect(st.instanceTypes[TYPE].launchProblem.advice.length).toBeGreaterThan(40);
      // --wait --json printed the same status before it gave up.
      // (The proxy dates its activities from the time of each request: `since` moves on.)
      expect(JSON.parse(r.stdout).instanceTypes[TYPE].launchProblem).toEqual({ ...st.instanceTypes[TYPE].launchProblem, since: expect.any(String) });
      const text = await gq(['status', s.job], h.env);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toContain(`      not starting: ${reasonOf(m.message)}`);
      expect(text.stdout).toContain(`        what to do: ${st.instanceTypes[TYPE].launchProblem.advice}`);
      expect(st.counts.queued).toBe(1); // nothing ran, nothing was lost
    });
  }

  slow('a transient cause that has not persisted is shown but not counted', async () => {
    const m = CAUSES.find((c) => c.cause === 'instance-profile')!;
    const s = awsScenario(h, 'lf-profile-new', 'every-task');
    refusals.set(groupName(s.job, TYPE), () => failedActivities(groupName(s.job, TYPE), m.message, [0.1, 0.2, 0.3, 0.4]));
    const r = await submit(s, jobFile(s, [task(s, 1)]), []);
    expect(r.code, r.stderr).toBe(0);
    const st = await statusJson(s.job, h.env);
    expect(st.instanceTypes[TYPE].launchProblem).toMatchObject({ cause: 'instance-profile', failedLaunches: 4, transient: true });
    const text = await gq(['status', s.job], h.env);
    expect(text.stdout).toContain('(usually clears by itself)');
  });

  slow('an instance that stays silent past --boot-timeout is a failed boot', async () => {
    // The "lf-" instances that moto starts never boot (the runtime runs only "bl-" groups).
    const s = awsScenario(h, 'lf-silent', 'every-task');
    const env = { ...h.env, GQ_BOOT_TIMEOUT: '3s', GQ_BOOT_FAILURES: '1' };
    const r = await gq(['submit', jobFile(s, [task(s, 1)]), '--code', s.code, '--name', s.job, '--wait'], env, { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`gq: Instances of ${TYPE} launched but never got to work: 1 failed boot(s); its group is set to 0`);
    expect(r.stderr).toContain('last: no report within 3 seconds of its launch');
    const g = await h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName(s.job, TYPE)] }));
    expect(g.AutoScalingGroups![0]!.DesiredCapacity).toBe(0);
  });

  it('a launch template or instance profile not yet visible to Auto Scaling: group creation is retried', async () => {
    const s = awsScenario(h, 'lf-not-yet', 'every-task');
    const group = groupName(s.job, TYPE);
    notYet.set(group, [
      `The specified launch template, with template name ${group}, does not exist.`,
      'You must use a valid fully-formed launch template. Value (gq-InstanceProfile-1A2B3C) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name',
    ]);
    const before = proxy.stats().answered.autoscaling ?? 0;
    const r = await submit(s, jobFile(s, [task(s, 1)]), []);
    expect(r.code, r.stderr).toBe(0);
    expect(notYet.get(group)).toEqual([]); // both refusals were answered, then moto created it
    expect((proxy.stats().answered.autoscaling ?? 0) - before).toBeGreaterThanOrEqual(2);
    const g = await h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }));
    expect(g.AutoScalingGroups).toHaveLength(1);
  });

  it('a boot loop (UserData fails and cannot report) is stopped after 3 boots: group at 0, reason shown', async () => {
    instancesCutOff = true;
    stopPowerOff = emulateEc2PowerOff(h);
    const s = awsScenario(h, 'bl-loop', 'every-task');
    const group = groupName(s.job, TYPE);
    const mine = () => h.runtime.instances().filter((i) => i.group === group);
    const t0 = Date.now();
    const r = await submit(s, jobFile(s, [task(s, 1)]), ['--wait'], 120_000);
    const ms = Date.now() - t0;
    console.log(`boot loop: submit --wait ended with ${r.code} after ${ms} ms and ${mine().length} boots`);
    expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(1);
    // The check runs every few seconds and these boots take about one: a few more may start before it.
    const counted = Number(/gq: Instances of t3\.micro launched but never got to work: (\d+) failed boot\(s\); its group is set to 0/.exec(r.stderr)?.[1]);
    expect(counted, r.stderr).toBeGreaterThanOrEqual(3);
    // The first download the boot makes (the Node.js build, then the agent) is refused: that is the reason.
    expect(r.stderr).toMatch(/last: boot failed: .*GET s3:\/\/\S+.*HTTP 404/);

    const g = await h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }));
    expect(g.AutoScalingGroups![0]!.DesiredCapacity).toBe(0);
    // No more boots once stopped (at most the one Auto Scaling had started meanwhile).
    const boots = mine().length;
    expect(boots).toBeGreaterThanOrEqual(3);
    await h.runtime.waitFor(() => mine().every((i) => i.terminated && !i.alive), 30_000);
    await new Promise((res) => setTimeout(res, 2000));
    expect(mine().length).toBe(boots);
    expect(boots).toBeLessThanOrEqual(8);

    const st = await statusJson(s.job, h.env);
    expect(st.instanceTypes[TYPE].boot).toMatchObject({ limit: 3, stopped: true });
    expect(st.instanceTypes[TYPE].boot.failed).toBeGreaterThanOrEqual(3);
    expect(st.instanceTypes[TYPE].boot.reason).toMatch(/^boot failed: .*GET s3:\/\/\S+.*HTTP 404/);
    expect(st.instances.filter((i: { state: string }) => i.state === 'BOOT_FAILED').length).toBeGreaterThanOrEqual(3);
    const text = await gq(['status', s.job], h.env);
    expect(text.stdout).toMatch(/stopped after \d+ failed boot\(s\), group set to 0: boot failed: .*HTTP 404/);
    // Running gq status again changes nothing (idempotent): the same records, the group still at 0.
    const again = await statusJson(s.job, h.env);
    expect(again.instances).toEqual(st.instances);
    expect(again.instanceTypes[TYPE].boot).toEqual(st.instanceTypes[TYPE].boot);
    expect(h.runtime.shutdownAttempts()).toEqual([]);
  });
});
