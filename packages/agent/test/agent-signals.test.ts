/**
 * run.ts's signals, on the real gq-agent process (local backend): a first SIGTERM lets the running
 * task finish and takes no other; a second stops the task and gives it back unrun (not charged as
 * an attempt), and nothing the task started is left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { GQ_AGENT, killAll, pidsMatching } from '../../../test/support/cli.js';
import { makeLocalJob, TYPE, type Fixture } from './local-job.js';

const made: Fixture[] = [];

afterEach(async () => {
  for (const f of made.splice(0)) {
    expect(killAll(f.home), `processes left running for ${f.home}`).toBe(0);
    await f.backend.close();
    rmSync(f.home, { recursive: true, force: true });
  }
});

interface Worker {
  child: ChildProcess;
  out: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startAgent(f: Fixture, instance: string): Worker {
  const child = spawn(
    process.execPath,
    [GQ_AGENT, 'run', '--backend', 'local', '--home', f.backend.home, '--job', f.job, '--instance-type', TYPE, '--instance', instance],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: f.home, GQ_LOG_LEVEL: 'info' } },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, out: () => out, exit };
}

async function until(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gq-agent signals', () => {
  it('a single SIGTERM lets the running task finish, takes no other task, and the worker exits 0', async () => {
    const f = await makeLocalJob('sigterm1', [`sleep 2; printf 'id\\n1\\n' > results.csv`, `printf 'id\\n2\\n' > results.csv`], { idleSeconds: 600 });
    made.push(f);
    const w = startAgent(f, 'w-term');
    await until('task 1 to run', async () => (await f.backend.status.getTask(f.job, 1))!.state === 'RUNNING');
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    const exit = await w.exit;
    expect(exit, w.out()).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeGreaterThan(1000); // it waited for the task
    expect((await f.backend.status.getTask(f.job, 1))!).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    expect(await f.backend.artifacts.exists((await f.backend.status.getTask(f.job, 1))!.resultKey!)).toBe(true);
    expect((await f.backend.status.getTask(f.job, 2))!).toMatchObject({ state: 'QUEUED', attempts: 0 });
    expect(w.out()).toMatch(/"reason":"drained"/);
    expect((await f.backend.status.listInstances(f.job)).map((i) => i.state)).toEqual(['STOPPED']);
  });

  it('a second SIGTERM stops the running task and gives it back unrun; nothing it started is left', async () => {
    // A background child whose command line names this test's folder (to be found by pgrep).
    const f = await makeLocalJob('sigterm2', (home) => [`bash -c 'sleep 30; true' ${home}/marked & wait; printf 'id\\n1\\n' > results.csv`], {
      idleSeconds: 600,
    });
    made.push(f);
    const w = startAgent(f, 'w-term2');
    await until('task 1 to run', async () => (await f.backend.status.getTask(f.job, 1))!.state === 'RUNNING');
    await until('its command to start', () => pidsMatching(`${f.home}/marked`).length >= 1);
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    w.child.kill('SIGTERM');
    const exit = await w.exit;
    expect(exit, w.out()).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(10_000); // not the task's 30 s
    // Released, not charged as an attempt: QUEUED with its attempt given back, no result.
    expect((await f.backend.status.getTask(f.job, 1))!).toMatchObject({ state: 'QUEUED', attempts: 0 });
    expect((await f.backend.status.getTask(f.job, 1))!.resultKey).toBeUndefined();
    expect(w.out()).toMatch(/"reason":"interrupted"/);
    // Visible again at once for the next worker.
    expect((await (await f.backend.queues.open(f.job, TYPE)).depth()).visible).toBe(1);
    await until('the task\'s processes to be gone', () => pidsMatching(`${f.home}/marked`).length === 0, 5000);
  });
});
