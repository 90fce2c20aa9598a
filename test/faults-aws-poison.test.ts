/**
 * "Prove that nothing is lost" on AWS (moto + the instance runtime running the real agent
 * bundle): poison tasks, a message in the dead-letter queue, and a task that runs longer than
 * the visibility timeout. One harness for the file; each test its own job. Every scenario ends
 * with the three checks of checkInvariants.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import {
  awsInvariants,
  awsScenario,
  byTask,
  consoleLogs,
  emulateEc2PowerOff,
  fleetGone,
  jobFile,
  runsOf,
  submit,
  task,
  TYPE,
} from './support/aws-faults.js';
import { gq, statusJson } from './support/cli.js';
import { describeAws } from './support/moto.js';

const slow = process.env.GQ_QUICK ? it.skip : it;
/** Scenarios of their own jobs and instances that run side by side (the one timed on heartbeats runs alone). */
const slowConcurrent = process.env.GQ_QUICK ? it.skip : it.concurrent;

describeAws('AWS backend on moto: poison tasks, dead letters, long tasks', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    h = (await startAwsHarness('faults-aws-poison', { jobPrefix: 'fp-' }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  slowConcurrent('a task that always fails and one that kills its own agent end FAILED after their limit; the others succeed', async () => {
    const s = awsScenario(h, 'fp-poison', 'every-task');
    // Task 2 crashes its agent at every attempt. It runs as the unprivileged task user and cannot
    // kill its (root) agent itself: it names it ($PPID) and the test kills it.
    const victims = join(s.dir, 'kill-agent');
    mkdirSync(victims, { mode: 0o777 });
    chmodSync(victims, 0o777);
    const killer = setInterval(() => {
      for (const n of readdirSync(victims).filter((x) => !x.endsWith('.done'))) {
        try {
          process.kill(Number(readFileSync(join(victims, n), 'utf8')), 'SIGKILL');
        } catch {
          /* gone already */
        }
        renameSync(join(victims, n), join(victims, `${n}.done`));
      }
    }, 100);
    const f = jobFile(s, [task(s, 1, 'echo always broken >&2; exit 5'), task(s, 2, `echo $PPID > ${victims}/$GQ_ATTEMPT; sleep 30`), task(s, 3), task(s, 4)]);
    const r = await submit(s, f, ['--retries', '1', '--visibility', '3s', '--wait', '--json']).finally(() => clearInterval(killer));
    expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(1); // tasks failed
    const st = await statusJson(s.job, h.env, true);
    expect(st.counts).toEqual({ queued: 0, running: 0, succeeded: 2, failed: 2, cancelled: 0 });
    const t = byTask(st);
    expect(t[1]).toMatchObject({ state: 'FAILED', attempts: 2, exitCode: 5 });
    expect(t[1].stderrTail).toContain('always broken');
    expect(t[2]).toMatchObject({ state: 'FAILED', attempts: 2 });
    expect(t[2].error).toMatch(/lost during attempt 2 of 2/);
    expect(runsOf(s, 1)).toHaveLength(2);
    expect(runsOf(s, 2)).toHaveLength(2);
    for (const n of [3, 4]) expect(runsOf(s, n)).toHaveLength(1);
    expect(st.failures.map((x: any) => x.task)).toEqual([1, 2]);
    const text = await gq(['status', s.job], h.env);
    expect(text.stdout).toMatch(/task 1: exit code 5 after 2 attempt/);
    expect(text.stdout).toMatch(/task 2: .*after 2 attempt.*lost/);
    // The status store bounded the attempts, not the dead-letter queue (which went, with the
    // job's other queues, when --wait saw the job finish: workers.ts removeFinishedFleet).
    for (const n of [1, 2]) expect(t[n].error).not.toMatch(/dead-letter/);
    await expect(h.backend.queues.open(s.job, TYPE)).rejects.toMatchObject({ name: 'QueueNotFoundError' });
    await awsInvariants(s);
    await fleetGone(s);
  }, 180_000);

  slowConcurrent('a message that reached the dead-letter queue: gq status records its task as failed and says why', async () => {
    // A job whose instances the runtime does not boot (its name is outside this file's prefix):
    // the test itself receives the message until SQS moves it to the dead-letter queue.
    const s = awsScenario(h, 'xdlq-fp', 'every-task');
    const f = jobFile(s, [task(s, 1)]);
    const r = await submit(s, f, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const q = await h.backend.queues.open(s.job, TYPE);
    for (let i = 0; i < 60 && (await q.deadLetters()).length === 0; i++) {
      await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 0 });
    }
    expect(await q.deadLetters()).toEqual([1]);
    expect((await statusJson(s.job, h.env)).counts).toMatchObject({ queued: 0, failed: 1 }); // this status call recorded it
    const st = await statusJson(s.job, h.env, true);
    expect(byTask(st)[1].state).toBe('FAILED');
    expect(byTask(st)[1].error).toMatch(/dead-letter queue/);
    expect(runsOf(s, 1)).toEqual([]);
    const text = await gq(['status', s.job], h.env);
    expect(text.stdout).toMatch(/task 1: .*dead-letter queue.*gq retry xdlq-fp --failed/);
    await awsInvariants(s);
    // Its group (never booted) back to nothing.
    expect((await gq(['cancel', s.job], h.env)).code).toBe(0);
  }, 120_000);

  slow('a task that runs longer than the visibility timeout is kept by its heartbeat and never runs twice', async () => {
    const s = awsScenario(h, 'fp-long', 'every-task');
    const f = jobFile(s, [task(s, 1, 'sleep 10'), task(s, 2), task(s, 3)]);
    const r = await submit(s, f, ['--visibility', '3s', '--wait', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = byTask(await statusJson(s.job, h.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    for (const n of [1, 2, 3]) expect(runsOf(s, n)).toHaveLength(1);
    expect(consoleLogs(s)).not.toMatch(/delivered again/);
    await awsInvariants(s);
    await fleetGone(s);
  }, 150_000);

});
