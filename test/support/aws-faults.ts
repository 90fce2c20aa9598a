/**
 * Helpers for the fault scenarios on moto (test/faults-aws*.test.ts): one harness per file, a
 * job per test, tasks that record every start of their command, and EC2's power-off behaviour,
 * which the instance runtime does not play.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand, TerminateInstanceInAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { expect } from 'vitest';
import type { TaskRecord, TaskState } from '../../packages/common/src/index.js';
import type { AwsHarness } from './aws-harness.js';
import { gq, pidsMatching, statusJson, testHome, waitFor } from './cli.js';
import { checkInvariants, type ResultsDeclared } from './invariants.js';

export const TYPE = 't3.micro';

export interface AwsScenario {
  dir: string;
  code: string;
  runs: string;
  job: string;
  h: AwsHarness;
  /** What its tasks write (checkInvariants): task() below writes a results file on success. */
  results: ResultsDeclared;
}

export function awsScenario(h: AwsHarness, job: string, results: ResultsDeclared): AwsScenario {
  const dir = testHome(job);
  const code = join(dir, 'code');
  const runs = join(dir, 'runs');
  mkdirSync(code, { recursive: true });
  mkdirSync(runs, { recursive: true });
  // Tasks run as the instances' task user: they record their starts here and leave markers in dir.
  chmodSync(runs, 0o777);
  chmodSync(dir, 0o1777);
  writeFileSync(join(code, 'README'), 'fault scenario code\n');
  return { dir, code, runs, job, h, results };
}

/** A task: record this start ("<attempt> <instance>"), run `body`, write a one-row results file. */
export function task(s: { runs: string }, n: number, body = 'true'): string {
  return `echo "$GQ_ATTEMPT $GQ_INSTANCE" >> ${s.runs}/t${n}; ${body}; printf 'id,attempt\\n${n},%s\\n' "$GQ_ATTEMPT" > results.csv`;
}

export function jobFile(s: AwsScenario, rows: string[], type = TYPE): string {
  const f = join(s.dir, 'jobs.csv');
  writeFileSync(f, ['instance_type,command', ...rows.map((r) => `${type},"${r.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return f;
}

/** Starts of task n's command, one line each: "<attempt> <instance>". */
export function runsOf(s: { runs: string }, n: number): string[] {
  const f = join(s.runs, `t${n}`);
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
}

export function byTask(st: any): Record<number, any> {
  return Object.fromEntries(st.tasks.map((t: any) => [t.task, t]));
}

/** The console logs (UserData and agent output) of the job's instances. */
export function consoleLogs(s: AwsScenario): string {
  return s.h.runtime
    .instances()
    .filter((i) => i.group.startsWith(`gq-${s.job}-`))
    .map((i) => s.h.runtime.consoleLog(i.id))
    .join('\n');
}

export async function awsInvariants(s: AwsScenario, allowed?: TaskState[]): Promise<void> {
  await checkInvariants({
    status: s.h.backend.status,
    artifacts: s.h.backend.artifacts,
    job: s.job,
    env: s.h.env,
    out: join(s.dir, 'out'),
    results: s.results,
    allowed,
    idColumn: 'id',
  });
}

/** Follow the job with `gq status` (which restores capacity when no worker is left) until it ends. */
export async function untilDone(s: AwsScenario, timeoutMs = 90_000): Promise<any> {
  return waitFor(
    `job ${s.job} to finish`,
    async () => {
      const st = await statusJson(s.job, s.h.env, true);
      return st.counts.queued + st.counts.running === 0 ? st : undefined;
    },
    timeoutMs,
    1000,
  );
}

/** `gq submit FILE --name JOB ...`, failing the test on an internal error. */
export async function submit(s: AwsScenario, file: string, args: string[], timeoutMs = 150_000) {
  const r = await gq(['submit', file, '--code', s.code, '--name', s.job, ...args], s.h.env, { timeoutMs });
  expect(r.stderr).not.toMatch(/internal error/);
  return r;
}

/**
 * Every instance of the job has left: terminated, its processes gone, its group at desired 0;
 * and nothing the job's tasks started is still running.
 */
export async function fleetGone(s: AwsScenario, timeoutMs = 60_000): Promise<void> {
  await s.h.runtime.waitFor(
    (is) => is.filter((i) => i.group.startsWith(`gq-${s.job}-`)).every((i) => i.terminated && !i.alive),
    timeoutMs,
  );
  const groups = await s.h.backend.clients.autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
  for (const g of (groups.AutoScalingGroups ?? []).filter((x) => x.AutoScalingGroupName?.startsWith(`gq-${s.job}-`))) {
    expect(g.DesiredCapacity, g.AutoScalingGroupName).toBe(0);
    expect((g.Instances ?? []).filter((i) => i.LifecycleState === 'InService')).toEqual([]);
  }
  await waitFor('the tasks\' processes to exit', async () => pidsMatching(s.runs).length === 0, 20_000);
  expect(s.h.runtime.shutdownAttempts()).toEqual([]);
}

/**
 * What EC2 does and the instance runtime does not: when the UserData ends without the agent
 * having left the group (the agent was killed), the script powers the instance off, the launch
 * template's shutdown behaviour terminates it, and the Auto Scaling group, whose desired capacity
 * did not change, launches a replacement. Here: an instance whose processes are all gone while it
 * is still in its group is terminated without decrementing the desired capacity, which moto
 * answers with a replacement. Returns a stop function.
 */
export function emulateEc2PowerOff(h: AwsHarness): () => void {
  const seen = new Set<string>();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      for (const i of h.runtime.instances()) {
        if (i.pid === undefined || i.alive || i.terminated || seen.has(i.id)) continue;
        seen.add(i.id);
        // Already gone when the agent left by itself: moto then refuses, which is fine.
        await h.backend.clients.autoscaling
          .send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: i.id, ShouldDecrementDesiredCapacity: false }))
          .catch(() => undefined);
      }
    })().finally(() => {
      busy = false;
    });
  }, 300);
  timer.unref();
  return () => clearInterval(timer);
}

/** Announce a Spot interruption to `victim`, then wait for its task `n` to be given back (another state or holder). */
export async function spotAndGivenBack(s: AwsScenario, n: number, victim: string, timeoutMs: number): Promise<{ task: TaskRecord; ms: number }> {
  s.h.runtime.announceSpot(victim);
  const t0 = Date.now();
  const task = await waitFor(`task ${n} to be given back`, async () => {
    const t = await s.h.backend.status.getTask(s.job, n);
    return t && (t.state !== 'RUNNING' || t.instance !== victim) ? t : undefined;
  }, timeoutMs, 100);
  return { task, ms: Date.now() - t0 };
}
