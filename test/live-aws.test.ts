/**
 * While a job runs, on AWS (moto + the instance runtime running the real agent bundle from its
 * UserData): `gq logs NAME TASK --follow` prints the task's output before it ends, from the live
 * log the agent uploads every few seconds (only when new output arrived), and returns when the
 * task ends, with its outcome; the progress tag shows in `gq status` with its time; a worker
 * that finished its task is not BUSY a moment later; the ETA once a task has finished.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeLiveChunk, keys } from '@gq/common';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsScenario, emulateEc2PowerOff, fleetGone, jobFile, submit, task } from './support/aws-faults.js';
import { GQ, statusJson, waitFor } from './support/cli.js';
import { describeAws } from './support/moto.js';

describeAws('AWS backend on moto: while a task runs', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    h = (await startAwsHarness('live-aws', { jobPrefix: 'lv-' }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  it('logs --follow streams the live log of a running task and ends with it (exit 1: it failed); a finished worker is no longer BUSY at once; ETA and tag times', async () => {
    const s = awsScenario(h, 'lv-follow', 'some-tasks');
    const gate = join(s.dir, 'gate');
    const gate1 = join(s.dir, 'gate1');
    const body = `echo first line; gq-agent tag percent_complete 40; while [ ! -e ${gate} ]; do sleep 0.2; done; echo second line; exit 3`;
    const f = jobFile(s, [task(s, 1, `while [ ! -e ${gate1} ]; do sleep 0.2; done`), task(s, 2, body)]);
    expect((await submit(s, f, ['--retries', '0', '--max-instances', '2'])).code).toBe(0);
    await waitFor('both tasks running, task 2 with its tag', async () => {
      const st = await statusJson(s.job, h.env);
      return st.running.length === 2 && st.running.some((t: any) => t.task === 2 && t.tags.percent_complete === '40');
    }, 120_000, 500);
    const st = await statusJson(s.job, h.env);
    expect(Date.parse(st.running.find((t: any) => t.task === 2).tagTimes.percent_complete)).toBeGreaterThan(Date.now() - 120_000);
    expect(st.eta).toBeNull(); // nothing has finished yet
    expect(st.etaUnknown).toMatch(/no task has finished/);

    // Task 1 ends: its instance (one slot) is no longer BUSY at once while task 2 runs on the
    // other: IDLE, or already gone (it may leave at once: the busy one stays for task 2's retry).
    writeFileSync(gate1, '');
    const done1 = await waitFor('task 1 to succeed', async () => ((await h.backend.status.getTask(s.job, 1))?.state === 'SUCCEEDED' ? Date.now() : false), 60_000, 100);
    const t1 = (await h.backend.status.getTask(s.job, 1))!;
    await waitFor('its worker shown idle or gone', async () => ['IDLE', 'STOPPED'].includes((await h.backend.status.listInstances(s.job)).find((i) => i.instance === t1.lastInstance)?.state ?? ''), 10_000, 100);
    expect(Date.now() - done1).toBeLessThan(2000);
    // (gq status reads these records; the idle worker may leave soon: the harness's idle period is short.)
    const after = await statusJson(s.job, h.env);
    expect(after.eta).toMatchObject({ finishedTasks: 1 });
    expect(after.eta.slots).toBeGreaterThanOrEqual(1);

    const child = spawn(process.execPath, [GQ, 'logs', s.job, '2', '--follow'], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    try {
      // The agent sends the live log within its 5 s period; the task still waits for the gate.
      await waitFor('the first line, followed', async () => out.includes('first line'), 30_000, 200);
      expect(out).not.toContain('second line');
      expect((await statusJson(s.job, h.env)).counts.running).toBe(1);
      const live = decodeLiveChunk(await h.backend.artifacts.getBytes(keys.taskLiveLog(s.job, 2)));
      expect(live).toMatchObject({ attempt: 1, from: 0, final: false });
      writeFileSync(gate, '');
      expect(await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-2), 60_000))]), err).toBe(1);
    } finally {
      child.kill('SIGKILL');
    }
    expect(out).toBe('first line\nsecond line\n');
    expect(err).toMatch(/task 2 failed, exit code 3 after 1 attempt/);
    // The last bytes were sent marked final before the final log.
    expect(decodeLiveChunk(await h.backend.artifacts.getBytes(keys.taskLiveLog(s.job, 2)))).toMatchObject({ final: true, to: out.length });
    await fleetGone(s);
  }, 240_000);
});
