/**
 * "Prove that nothing is lost" on AWS (moto + the instance runtime, which boots every instance
 * from its real UserData and runs the real agent bundle): an agent killed with SIGKILL at each
 * point of a task's life, and a Spot interruption. One harness for the file; each test its own
 * job. Every scenario ends with the three checks of checkInvariants.
 *
 * The kill faults are armed per job: the agent fires `kill:<point>@<marker>` only if it can create
 * the marker, whose path names the job (`%j`, agent/src/faults.ts), so every job's markers are
 * created (disarmed) up front and a test removes its own job's for its point. The scenarios are
 * their own jobs on one harness and run side by side; the Spot one, which times the give-back,
 * runs alone after them.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import {
  awsInvariants,
  awsScenario,
  byTask,
  emulateEc2PowerOff,
  fleetGone,
  jobFile,
  runsOf,
  spotAndGivenBack,
  submit,
  task,
} from './support/aws-faults.js';
import { statusJson, testHome, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';

const slow = process.env.GQ_QUICK ? it.skip : it;
const sideBySide = process.env.GQ_QUICK ? it.skip : it.concurrent;
const POINTS = ['install', 'after-claim', 'after-upload', 'after-record'] as const;
const JOBS = [...POINTS.map((p) => `fa-${p}`), 'fa-running', 'fa-spot'];
const markers = testHome('faults-aws-markers');
const marker = (job: string, p: string) => join(markers, `${job}.${p}`);

describeAws('AWS backend on moto: agents killed, Spot interruptions', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    mkdirSync(markers, { recursive: true });
    for (const j of JOBS) for (const p of POINTS) writeFileSync(marker(j, p), 'disarmed');
    h = (await startAwsHarness('faults-aws', {
      jobPrefix: 'fa-',
      faultEnv: { GQ_TEST_FAULT: POINTS.map((p) => `kill:${p}@${marker('%j', p)}`).join(',') },
    }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  const cases = [
    { point: 'install', reruns: false, what: 'during its install script: it never took a task' },
    { point: 'after-claim', reruns: true, what: 'after claiming, before the command started' },
    { point: 'after-upload', reruns: true, what: 'between the upload and the status write' },
    { point: 'after-record', reruns: false, what: 'between the status write and the message delete' },
  ] as const;

  for (const c of cases) {
    sideBySide(`kill:${c.point} — ${c.what}`, async () => {
      const s = awsScenario(h, `fa-${c.point}`, 'every-task');
      const install = join(s.dir, 'INSTALL.sh');
      writeFileSync(install, 'echo installing; sleep 0.5; echo installed\n');
      const f = jobFile(s, [1, 2, 3].map((n) => task(s, n, 'sleep 0.5')));
      rmSync(marker(s.job, c.point)); // armed: the first agent of this job to get there dies
      const r = await submit(s, f, ['--install', install, '--visibility', '3s', '--wait', '--json']);
      expect(r.code, `${r.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
      expect(JSON.parse(r.stdout).counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 0, cancelled: 0 });
      expect(readFileSync(marker(s.job, c.point), 'utf8')).toMatch(/^\d+$/); // it fired (the pid of the agent)

      const st = byTask(await statusJson(s.job, h.env, true));
      const hit = [1, 2, 3].filter((n) => st[n].attempts > 1);
      if (c.reruns) {
        expect(hit).toHaveLength(1);
        const n = hit[0]!;
        expect(st[n]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
        expect(runsOf(s, n).map((l) => l.split(' ')[0])).toEqual(c.point === 'after-claim' ? ['2'] : ['1', '2']);
        for (const m of [1, 2, 3].filter((x) => x !== n)) expect(runsOf(s, m)).toHaveLength(1);
      } else {
        expect(hit).toEqual([]);
        for (const n of [1, 2, 3]) expect(runsOf(s, n), `task ${n}`).toHaveLength(1);
      }
      await awsInvariants(s);
      await fleetGone(s);
    }, 180_000);
  }

  sideBySide('killed while its task runs (SIGKILL to its agent, once): the task runs again, recorded once', async () => {
    const s = awsScenario(h, 'fa-running', 'every-task');
    const once = join(s.dir, 'killed-once');
    // The task runs as the unprivileged task user and cannot kill its (root) agent itself: it
    // names it ($PPID), and the test kills it.
    const f = jobFile(s, [
      task(s, 1, `if [ ! -e ${once} ]; then echo $PPID > ${once}; sleep 30; fi`),
      task(s, 2, 'sleep 0.5'),
      task(s, 3, 'sleep 0.5'),
    ]);
    const pending = submit(s, f, ['--visibility', '3s', '--wait', '--json']);
    const agent = await waitFor('task 1 to run', async () => existsSync(once) && Number(readFileSync(once, 'utf8')), 90_000, 100);
    process.kill(agent, 'SIGKILL');
    const r = await pending;
    expect(r.code, r.stderr).toBe(0);
    const st = byTask(await statusJson(s.job, h.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
    const starts = runsOf(s, 1);
    expect(starts.map((l) => l.split(' ')[0])).toEqual(['1', '2']);
    // Where it runs again: on this instance once systemd has restarted its agent (Restart=on-failure),
    // or on another one, whichever claims it first after the lease ran out.
    for (const n of [2, 3]) expect(runsOf(s, n)).toHaveLength(1);
    await awsInvariants(s);
    await fleetGone(s);
  }, 180_000);

  slow('a Spot interruption: the task is given back within 5 s, uncharged, and the instance takes no more work', async () => {
    const s = awsScenario(h, 'fa-spot', 'every-task');
    const started = join(s.dir, 'started');
    const f = jobFile(s, [task(s, 1, `if [ ! -e ${started} ]; then touch ${started}; sleep 60; fi`)]);
    const r = await submit(s, f, ['--visibility', '5s', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const store = h.backend.status;
    const running = await waitFor('task 1 to run', async () => {
      const t = await store.getTask(s.job, 1);
      return t?.state === 'RUNNING' && existsSync(started) ? t : undefined;
    }, 90_000, 250);
    const victim = running.instance!;
    const { task: back, ms: releasedMs } = await spotAndGivenBack(s, 1, victim, 15_000);
    expect(releasedMs).toBeLessThan(5000);
    expect(back.attempts).toBe(0); // given back uncharged
    // The interrupted instance takes no more work: its agent leaves, the instance terminates.
    await h.runtime.waitFor((is) => is.some((i) => i.id === victim && i.terminated && !i.alive), 30_000);
    expect(h.runtime.consoleLog(victim)).toMatch(/Spot interruption announced/);
    expect(h.runtime.consoleLog(victim)).toMatch(/"reason":"interrupted"/);

    // The job finishes on a replacement instance by itself: no gq command runs meanwhile (the
    // group replaces the reclaimed instance, as EC2 Auto Scaling does after a Spot interruption).
    await waitFor('task 1 to finish elsewhere, with no gq command', async () => (await store.getTask(s.job, 1))?.state === 'SUCCEEDED', 60_000, 500);
    const done = await statusJson(s.job, h.env, true);
    const t = byTask(done)[1];
    expect(t.state).toBe('SUCCEEDED');
    // attempts counts charged attempts: the interrupted run was given back uncharged, so the
    // final count equals the attempts that ran to an outcome (1), while the command started twice.
    expect(t.attempts).toBe(1);
    const startsOn = runsOf(s, 1).map((l) => l.split(' ')[1]);
    expect(startsOn).toHaveLength(2);
    expect(startsOn[0]).toBe(victim);
    expect(startsOn[1]).not.toBe(victim);
    await awsInvariants(s);
    await fleetGone(s);
  }, 180_000);
});
