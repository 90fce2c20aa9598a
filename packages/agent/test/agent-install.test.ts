/**
 * The worker's install, in this process on the local backend and a fake clock (the pauses between
 * attempts pass at once): INSTALL.sh that fails and then succeeds within the job's attempts makes
 * the worker READY and it runs tasks; one that fails every time, or outlasts its timeout, is
 * recorded as INSTALL_FAILED with its reason and its log, and the worker takes no task.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys, type InstanceState, type JobSpec } from '@gq/common';
import { InProcess, TYPE, wrap, writesResult, type Fixture } from './in-process.js';

const t = new InProcess();
afterEach(() => t.cleanup());

/** A job whose install script is `script`, and the states its worker records, in order. */
async function jobWithInstall(label: string, script: string, over: Partial<JobSpec>) {
  const installKey = keys.install(`al-${label}`);
  const f = await t.job(label, [writesResult('1')], { installKey, ...over });
  await f.backend.artifacts.putBytes(installKey, script);
  const states: InstanceState[] = [];
  const status = wrap(f.backend.status, {
    async putInstance(rec) {
      states.push(rec.state);
      await f.backend.status.putInstance(rec);
    },
  });
  return { f, states, backend: { ...f.backend, status } };
}

async function installLog(f: Fixture, instance: string): Promise<string> {
  const rec = (await f.backend.status.listInstances(f.job)).find((i) => i.instance === instance)!;
  expect(rec.installLogKey).toBe(keys.instanceLog(f.job, instance, 'install.log'));
  return (await f.backend.artifacts.getBytes(rec.installLogKey!)).toString('utf8');
}

async function expectNoTaskTaken(f: Fixture): Promise<void> {
  expect((await f.backend.status.getTask(f.job, 1))!).toMatchObject({ state: 'QUEUED', attempts: 0 });
  expect((await (await f.backend.queues.open(f.job, TYPE)).depth()).visible).toBe(1); // never received
}

describe('agent: install retries', () => {
  it('an install that fails once and then succeeds within its attempts makes the worker READY', async () => {
    // Counts its runs in the worker's folder (the install's working folder, kept between attempts).
    const script = 'n=$(( $(cat tries 2>/dev/null || echo 0) + 1 )); echo $n > tries; echo "try $n"; [ $n -ge 2 ] || { echo not yet >&2; exit 1; }\n';
    const { f, states, backend } = await jobWithInstall('install-again', script, { installAttempts: 3 });
    const r = await (await t.start(f, 'w-again', { backend })).done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    expect(states.slice(0, 2)).toEqual(['INSTALLING', 'READY']);
    expect(states).not.toContain('INSTALL_FAILED');
    expect(t.clock.sleeps).toEqual([2000]); // one pause, after the first attempt
    const log = await installLog(f, 'w-again');
    expect(log).toMatch(/install attempt 1 of 3[^]*try 1[^]*install exited with code 1: not yet[^]*install attempt 2 of 3[^]*try 2[^]*install succeeded on attempt 2/);
    expect(log).not.toMatch(/attempt 3 of 3/);
    expect((await f.backend.status.getTask(f.job, 1))!.state).toBe('SUCCEEDED');
  });

  it('an install that fails every time is recorded INSTALL_FAILED with its reason and log; the worker takes no task', async () => {
    const { f, states, backend } = await jobWithInstall('install-fails', 'echo broken >&2; exit 7\n', { installAttempts: 3 });
    const r = await (await t.start(f, 'w-fails', { backend })).done;
    expect(r).toEqual({ exitCode: 3, tasksRun: 0, reason: 'install-failed', leftAt: expect.any(Number) });
    expect(states).not.toContain('READY');
    expect(t.clock.sleeps).toEqual([2000, 4000]); // a longer pause after each failure, none after the last
    const rec = (await f.backend.status.listInstances(f.job))[0]!;
    expect(rec).toMatchObject({ state: 'INSTALL_FAILED', detail: 'install exited with code 7: broken (after 3 attempts)' });
    const log = await installLog(f, 'w-fails');
    expect(log.match(/===== gq: install exited with code 7: broken =====/g)).toHaveLength(3);
    await expectNoTaskTaken(f);
  });

  it('an install that outlasts its timeout is stopped and recorded INSTALL_FAILED', async () => {
    const { f, backend } = await jobWithInstall('install-slow', 'echo started; sleep 30\n', { installAttempts: 1, installTimeoutSeconds: 1 });
    const t0 = Date.now();
    const r = await (await t.start(f, 'w-slow', { backend })).done;
    expect(Date.now() - t0).toBeLessThan(10_000); // not the script's 30 s
    expect(r).toMatchObject({ exitCode: 3, tasksRun: 0, reason: 'install-failed' });
    const rec = (await f.backend.status.listInstances(f.job))[0]!;
    expect(rec).toMatchObject({ state: 'INSTALL_FAILED', detail: 'install timed out after 1s (after 1 attempts)' });
    expect(await installLog(f, 'w-slow')).toMatch(/started\n[^]*install timed out after 1s/);
    await expectNoTaskTaken(f);
  });
});
