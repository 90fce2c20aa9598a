/**
 * Cost on moto with the real agent (issue 10): instances boot from their real UserData, run tasks
 * of known durations at a known price (m7i.48xlarge, $9.6768/h on-demand in us-east-1 in the
 * shipped table), and `gq status` gives the spend, busy fraction and task shares exact to the
 * cent; `gq submit --dry-run` makes no AWS write call; `--max-cost` refuses a job over it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { gq, statusJson, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';

const TYPE = 'm7i.48xlarge';
const PRICE = 9.6768;
const cents = (usd: number) => Math.round(usd * 100 + Number.EPSILON) / 100;
const billed = (from: string, to: string) => Math.max(60, Math.ceil((Date.parse(to) - Date.parse(from)) / 1000));
/** gp3, USD per GB-hour (0.08 per GB-month of 730 hours), billed per second like the instance. */
const GP3_GB_HOUR = 0.08 / 730;

describeAws('AWS backend on moto: what a job costs', () => {
  let h: AwsHarness;
  let dir: string;

  beforeAll(async () => {
    h = (await startAwsHarness('aws-cost', { jobPrefix: 'cost-' }))!;
    dir = join(h.home, 'cost');
    mkdirSync(join(dir, 'code'), { recursive: true });
    writeFileSync(join(dir, 'code', 'README'), 'cost test\n');
    writeFileSync(join(dir, 'jobs.csv'), ['instance_type,command', ...[1, 2, 3, 4].map((n) => `${TYPE},sleep 2; printf 'n\\n${n}\\n' > results.csv`)].join('\n') + '\n');
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  const writeCalls = (log: string) =>
    (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [])
      .map((l) => JSON.parse(l) as { service: string; operation: string })
      .filter((c) => !/^(Describe|Get|List|Head|Query|Scan|BatchGet)/.test(c.operation));

  it('gq submit --dry-run prints the plan and a cost range, and makes no AWS write call', async () => {
    const log = join(dir, 'dry-run-calls.jsonl');
    const r = await gq(['submit', join(dir, 'jobs.csv'), '--code', join(dir, 'code'), '--name', 'cost-dry', '--dry-run', '--estimate-runtime', '30m', '--json'], { ...h.env, GQ_TEST_AWS_CALL_LOG: log });
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan).toMatchObject({ dryRun: true, name: 'cost-dry', total: 4, types: [{ instanceType: TYPE, tasks: 4, instances: 2, slots: 1, spot: false, pricePerHour: PRICE }] });
    // Low: 4 × 30 min of task time. High: 2 instances × (2 waves of 30 min + 300 s boot + 3 s idle).
    expect(cents(plan.estimate.low)).toBe(19.35);
    expect(cents(plan.estimate.high)).toBe(20.98);
    expect(writeCalls(log)).toEqual([]);
    expect(await h.backend.status.getJob('cost-dry')).toBeUndefined();
    const text = await gq(['submit', join(dir, 'jobs.csv'), '--code', join(dir, 'code'), '--name', 'cost-dry', '--dry-run'], h.env);
    expect(text.stdout).toMatch(/Nothing was created/);
    expect(text.stdout).toMatch(/--estimate-runtime/);
  }, 120_000);

  it('gq submit --max-cost refuses a job whose estimate is over it, writing nothing', async () => {
    const log = join(dir, 'cap-calls.jsonl');
    const r = await gq(['submit', join(dir, 'jobs.csv'), '--code', join(dir, 'code'), '--name', 'cost-refused', '--estimate-runtime', '30m', '--max-cost', '10'], { ...h.env, GQ_TEST_AWS_CALL_LOG: log });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/over --max-cost \$10\.00/);
    expect(writeCalls(log)).toEqual([]);
    expect(await h.backend.status.getJob('cost-refused')).toBeUndefined();
  }, 120_000);

  it('gq status gives the spend, busy fraction and task shares of a run, exact to the cent', async () => {
    const sub = await gq(['submit', join(dir, 'jobs.csv'), '--code', join(dir, 'code'), '--name', 'cost-run', '--wait', '--json'], h.env, { timeoutMs: 240_000 });
    expect(sub.code, `${sub.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
    // Every instance has left (recorded STOPPED with its end) before the figures are final.
    const instances = await waitFor('instances stopped', async () => {
      const recs = await h.backend.status.listInstances('cost-run');
      return recs.length > 0 && recs.every((r) => r.endedAt !== undefined) && recs;
    }, 120_000);
    // The root volume the launch template gives each instance: the image's size (its UserData tells the agent).
    const image = await h.backend.clients.ec2.send(new DescribeImagesCommand({ ImageIds: [h.env.GQ_AMI!] }));
    const gb = image.Images?.[0]?.BlockDeviceMappings?.find((m) => m.DeviceName === image.Images?.[0]?.RootDeviceName)?.Ebs?.VolumeSize;
    expect(gb).toBeGreaterThan(0);
    for (const r of instances) {
      expect(r).toMatchObject({ lifecycle: 'on-demand', pricePerHour: PRICE, instanceType: TYPE, volumeGb: gb });
      expect(r.priceSource).toMatch(/on-demand price table/);
      expect(Date.parse(r.launchedAt!)).toBeLessThanOrEqual(Date.parse(r.bootedAt!));
      expect(Date.parse(r.bootedAt!)).toBeLessThanOrEqual(Date.parse(r.installedAt!));
      expect(Date.parse(r.installedAt!)).toBeLessThanOrEqual(Date.parse(r.endedAt!));
    }
    // The agents counted every attempt (4 tasks of 2 s), and their busy time is that time.
    expect(instances.reduce((a, r) => a + (r.tasksRun ?? 0), 0)).toBe(4);
    const busy = instances.reduce((a, r) => a + (r.busySeconds ?? 0), 0);
    expect(busy).toBeGreaterThanOrEqual(7);
    expect(busy).toBeLessThan(4 * 2 + 6);

    const s = await statusJson('cost-run', h.env, true);
    const paid = instances.reduce((a, r) => a + billed(r.launchedAt!, r.endedAt!), 0);
    // The instances and their root volumes, per second with the 60-second minimum each.
    const rate = PRICE + gb! * GP3_GB_HOUR;
    expect(s.cost.spend).toBe(cents((paid * rate) / 3600));
    expect(s.cost.spend).toBeGreaterThanOrEqual(cents((instances.length * 60 * rate) / 3600)); // the minute each
    expect(s.cost.toFinish).toEqual({ usd: 0, seconds: 0 });
    expect(s.cost.instancesWithoutPrice).toBe(0);
    expect(s.cost.perType).toEqual([expect.objectContaining({ instanceType: TYPE, pricePerHour: PRICE, instances: instances.length, running: 0, paidSeconds: paid, busySeconds: busy })]);
    expect(s.cost.busyFraction).toBeCloseTo(busy / paid, 10);
    for (const t of s.tasks) {
      const ran = (Date.parse(t.finishedAt) - Date.parse(t.startedAt)) / 1000;
      expect(ran).toBeGreaterThanOrEqual(2);
      expect(t.cost).toBe(cents((rate * ran) / 3600));
    }
    const text = await gq(['status', 'cost-run'], h.env);
    expect(text.stdout).toContain(`Cost: $${s.cost.spend.toFixed(2)} so far`);
    // A dry run like this job counts its root volumes beside the instances in the estimate.
    const like = await gq(['submit', join(dir, 'jobs.csv'), '--code', join(dir, 'code'), '--name', 'cost-like', '--dry-run', '--like', 'cost-run', '--json'], h.env);
    expect(like.code, like.stderr).toBe(0);
    const [plan] = (JSON.parse(like.stdout) as { types: { rootVolumeGb: number; instances: number; estimate: { low: number } }[] }).types;
    expect(plan!.rootVolumeGb).toBe(gb);
    const mean = instances.reduce((a, r) => a + r.taskSeconds!, 0) / instances.reduce((a, r) => a + r.tasksRun!, 0);
    expect(plan!.estimate.low).toBeCloseTo((Math.max(4 * mean, plan!.instances * 60) * rate) / 3600, 10);
  }, 300_000);

  it('--max-cost stops a running job: no new task or instance, running tasks finish, groups at 0; gq resume raises it', async () => {
    const jobs = join(dir, 'capped.csv');
    writeFileSync(jobs, ['instance_type,command', ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `${TYPE},sleep 3; printf 'n\\n${n}\\n' > results.csv`)].join('\n') + '\n');
    // Two instances cost their first minute each ($0.32256); with one task of ~3 s more ($0.008),
    // the cap is reached once the first tasks have finished: the rest stay queued.
    const r = await gq(['submit', jobs, '--code', join(dir, 'code'), '--name', 'cost-capped', '--max-cost', '0.33', '--wait'], h.env, { timeoutMs: 240_000 });
    expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(1);
    expect(r.stderr).toMatch(/stopped at its cost cap/);
    const job = await h.backend.status.getJob('cost-capped');
    expect(job?.maxCost).toBe(0.33);
    const s = await statusJson('cost-capped', h.env);
    expect(s.counts.running).toBe(0);
    expect(s.counts.failed + s.counts.cancelled).toBe(0);
    expect(s.counts.succeeded).toBeGreaterThanOrEqual(2); // the tasks running when the cap was reached finished
    expect(s.counts.queued).toBeGreaterThanOrEqual(1);
    expect(s.cost.cap).toMatchObject({ maxCost: 0.33, reached: true });
    const groups = await h.backend.fleet.describe('cost-capped');
    expect(groups.every((g) => g.desired === 0)).toBe(true);
    await waitFor('capped instances gone', async () => (await h.backend.status.listInstances('cost-capped')).every((i) => i.endedAt !== undefined), 60_000);
    const text = await gq(['status', 'cost-capped'], h.env);
    expect(text.stdout).toMatch(/Stopped at the cost cap \$0\.33: \$0\.3\d spent/);
    expect(text.stdout).toMatch(/gq resume cost-capped --max-cost/);
    // Whoever saw it first recorded the stop on the job (the agents read only that item).
    expect((await h.backend.status.getJob('cost-capped'))?.capStop).toMatchObject({ maxCost: 0.33 });
    // gq retry refuses at the cap, with the figures and the way on, and changes nothing.
    const retry = await gq(['retry', 'cost-capped', '--failed'], h.env);
    expect(retry.code).toBe(1);
    expect(retry.stderr).toMatch(/is stopped at its cost cap \$0\.33: \$0\.3\d spent \+ \$\d+\.\d\d committed/);
    expect(retry.stderr).toMatch(/gq resume cost-capped --max-cost USD/);
    // Raised, the job goes on to its end.
    const resumed = await gq(['resume', 'cost-capped', '--max-cost', '5', '--wait', '--json'], h.env, { timeoutMs: 240_000 });
    expect(resumed.code, `${resumed.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
    expect(JSON.parse(resumed.stdout).counts).toMatchObject({ queued: 0, running: 0, succeeded: 8 });
    const raised = await h.backend.status.getJob('cost-capped');
    expect(raised?.maxCost).toBe(5);
    expect(raised?.capStop).toBeUndefined();
  }, 300_000);
});
