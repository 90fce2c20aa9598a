/**
 * Idle instances, measured (issue 10: "no instance runs without work longer than the idle period
 * plus a minute"). A small job on moto with the instance runtime (instances boot from their real
 * UserData and run the real agent): one long task and several short ones, more instances than
 * the long task needs at the end. Each instance's time without a task (after its install, up to
 * leaving its group) is measured from the runtime's launch and leave times, the install script's
 * marks and the tasks' attempts (test/support/fleet-figures.ts, which bench/fleet uses too).
 * Also the arithmetic of fleet-figures.ts itself.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsScenario, fleetGone, jobFile, submit } from './support/aws-faults.js';
import { waitFor } from './support/cli.js';
import { attemptsOf, billedSeconds, fleetFigures, gaps, parseMarks } from './support/fleet-figures.js';
import { describeAws } from './support/moto.js';

describe('fleet figures (pure)', () => {
  it('bills per second with a 60-second minimum, in scaled seconds', () => {
    expect(billedSeconds(10_000)).toBe(60);
    expect(billedSeconds(61_200)).toBe(62);
    expect(billedSeconds(120_000)).toBe(120);
    // Scale 24: a run second stands for 24 s; the minimum is 2.5 s of the run.
    expect(billedSeconds(1_000, 24)).toBe(2.5);
    expect(billedSeconds(10_010, 24)).toBeCloseTo(241 / 24);
    expect(() => billedSeconds(1000, 0)).toThrow(/scale/);
  });

  it('finds the stretches that no attempt covers', () => {
    expect(gaps(0, 100, [])).toEqual([100]);
    expect(gaps(0, 100, [{ start: 10, end: 30 }, { start: 20, end: 50 }, { start: 70, end: 90 }])).toEqual([10, 20, 10]);
    expect(gaps(0, 100, [{ start: 0, end: 100 }])).toEqual([]);
  });

  it('ratio and idle stretches of a fleet, boot and install excluded from idle', () => {
    const t = (s: number) => s * 1000;
    const instances = [
      { id: 'i-a', launchedAt: t(0), leftAt: t(100), installStart: t(10), installEnd: t(20) },
      { id: 'i-b', launchedAt: t(0), leftAt: t(30) },
    ];
    const attempts = [
      { task: 1, instance: 'i-a', start: t(20), end: t(60) },
      { task: 2, instance: 'i-a', start: t(65), end: t(95) },
      { task: 3, instance: 'i-b', start: t(0), end: t(25) },
    ];
    const f = fleetFigures(instances, attempts);
    expect(f.instances.map((i) => [i.id, i.paid, i.boot, i.install, i.busy, i.longestIdle])).toEqual([
      ['i-a', 100, 10, 10, 70, 5],
      ['i-b', 60, 0, 0, 25, 5],
    ]);
    expect(f.paid).toBe(160);
    expect(f.ratio).toBeCloseTo(160 / (95 + 20));
    expect(f.longestIdle).toBe(5);
    // 160 paid - 115 useful: i-a idles 5 s between tasks and 5 s at its end, i-b 5 s; i-b's 30 s are billed 60.
    expect(f.waste).toEqual({ idleAtEnd: 10, idleBetween: 5, rounding: 30 });
  });

  it('reads the marks of the install and of the tasks; attempts take their instance from them', () => {
    const m = parseMarks(
      ['1000 install-start i-a', '4000 install-end i-a', '5000 task-start i-a 1', '9000 task-end i-a 1', 'noise', '6000 task-start i-b 2'].join('\n'),
    );
    expect(m.installs.get('i-a')).toEqual({ installStart: 1000, installEnd: 4000 });
    expect(m.tasks.get(1)).toEqual({ instance: 'i-a', start: 5000, end: 9000 });
    const attempts = attemptsOf(
      [
        { task: 1, startedAt: new Date(4900).toISOString(), finishedAt: new Date(9300).toISOString() },
        { task: 2, startedAt: new Date(5900).toISOString() }, // not finished: left out
        { task: 3, startedAt: new Date(1).toISOString(), finishedAt: new Date(2).toISOString() }, // no mark
      ],
      m,
    );
    expect(attempts).toEqual([{ task: 1, instance: 'i-a', start: 4900, end: 9300 }]);
  });
});

/** The tasks' and the install's marks: "<epoch ms> what <instance> [task]". */
function mark(file: string, what: string, who: string): string {
  return `echo "$(date +%s%3N) ${what} ${who}" >> ${file}`;
}

describeAws('idle instances on moto: none runs without work longer than the idle period plus the time to leave', () => {
  let h: AwsHarness;

  beforeAll(async () => {
    h = (await startAwsHarness('fleet-idle', { jobPrefix: 'fi-' }))!;
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('one long task and several short ones on three instances: the instances without work leave', async () => {
    const s = awsScenario(h, 'fi-uneven', 'every-task');
    const marks = join(s.runs, 'marks.log');
    writeFileSync(marks, '');
    chmodSync(marks, 0o666); // the tasks run as the instances' task user
    const task = (n: number, seconds: number) =>
      [mark(marks, 'task-start', `$GQ_INSTANCE ${n}`), `sleep ${seconds}`, mark(marks, 'task-end', `$GQ_INSTANCE ${n}`), `printf 'id,attempt\\n${n},1\\n' > results.csv`].join('; ');
    // The install marks itself with the emulated machine's id (the runtime's marker: id.token).
    const install = join(s.dir, 'INSTALL.sh');
    writeFileSync(install, `#!/bin/sh\n${mark(marks, 'install-start', '${GQ_RUNTIME_INSTANCE%%.*}')}\nsleep 1\n${mark(marks, 'install-end', '${GQ_RUNTIME_INSTANCE%%.*}')}\n`);
    const LONG_S = 20;
    const IDLE_S = 3;
    const f = jobFile(s, [task(1, LONG_S), ...[2, 3, 4, 5, 6].map((n) => task(n, 2))]);
    const r = await submit(s, f, ['--install', install, '--idle', `${IDLE_S}s`, '--max-instances', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      `job ${s.job} to finish by itself`,
      async () => {
        const c = (await h.backend.status.getJob(s.job))?.counts;
        return c && c.queued + c.running === 0 ? c : undefined;
      },
      120_000,
      500,
    );
    await fleetGone(s);

    const m = parseMarks(readFileSync(marks, 'utf8'));
    const tasks = await h.backend.status.listTasks(s.job);
    expect(tasks.map((t) => t.state)).toEqual(Array(6).fill('SUCCEEDED'));
    const attempts = attemptsOf(tasks, m);
    expect(attempts).toHaveLength(6);
    const mine = h.runtime.instances().filter((i) => i.group.startsWith(`gq-${s.job}-`));
    expect(mine).toHaveLength(3);
    const figures = fleetFigures(
      mine.map((i) => ({ id: i.id, launchedAt: i.launchedAt, leftAt: i.leftAt!, ...m.installs.get(i.id) })),
      attempts,
    );
    for (const i of figures.instances) expect(i.install, `${i.id} ran its install`).toBeGreaterThanOrEqual(1);
    // The bound is the idle period plus the time it takes to leave, which the issue puts at a
    // minute. Here leaving (the idle decision's reads, TerminateInstanceInAutoScalingGroup, the
    // runtime seeing the instance go, every 0.5 s) takes about a second on moto, not EC2's tens of
    // seconds, so that minute is scaled down to 8 s (a wide margin on a loaded machine). The bound
    // still tells the two cases apart: an instance that leaves once idle for the idle period
    // passes; one kept without work for a task it does not run (staying for the long task, or an
    // Auto Scaling replacement of a leaving instance) sits idle for most of the long task's
    // 20 s, over the bound. With the literal minute the long task would have to run over a minute.
    const bound = IDLE_S + 8;
    const stretches = figures.instances.map((i) => [i.id, i.tasks, Number(i.longestIdle.toFixed(1))]);
    for (const i of figures.instances) expect(i.longestIdle, `longest idle stretches: ${JSON.stringify(stretches)}`).toBeLessThanOrEqual(bound);
    // The instances that ran only short tasks left while the long one still ran.
    const longOn = attempts.find((a) => a.task === 1)!;
    for (const i of mine.filter((x) => x.id !== longOn.instance)) expect(i.leftAt!).toBeLessThan(longOn.end);
  }, 240_000);
});
