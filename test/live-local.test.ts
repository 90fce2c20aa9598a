/**
 * While a job runs, on the local backend through the real CLI and worker processes: `gq logs
 * NAME TASK --follow` prints a task's output before the task ends and returns when it ends (with
 * its outcome); `gq status` shows the ETA and the running task's progress tags with their age;
 * a worker waiting for its failed task's retry is shown IDLE at once, not BUSY until it runs again.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectNoProcessesLeft, GQ, gq, gqEnv, statusJson, testHome, waitFor } from './support/cli.js';

const homes: string[] = [];
afterEach(() => expectNoProcessesLeft(homes, expect));

function jobFile(home: string, commands: string[]): string {
  const file = join(home, 'jobs.csv');
  writeFileSync(file, ['instance_type,command', ...commands.map((c) => `local,"${c.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return file;
}

function setUp(label: string, extra: Record<string, string> = {}) {
  const home = testHome(label);
  homes.push(home);
  const code = join(home, 'code');
  mkdirSync(code);
  return { home, code, env: gqEnv(home, extra) };
}

describe('local backend: while a job runs', () => {
  it('logs --follow streams a running task and ends with it; status shows the ETA and tags with their age', async () => {
    const { home, code, env } = setUp('live-follow', { GQ_IDLE: '3' });
    const gate = join(home, 'gate');
    const file = jobFile(home, [
      "echo one; printf 'id\\n1\\n' > results.csv",
      `echo first line; gq-agent tag percent_complete 40; while [ ! -e ${gate} ]; do sleep 0.1; done; echo second line; exit 3`,
    ]);
    const sub = await gq(['submit', file, '--code', code, '--name', 'live-job', '--workers', '1', '--retries', '0'], env);
    expect(sub.code, sub.stderr).toBe(0);
    await waitFor('task 2 running with its tag', async () => {
      const s = await statusJson('live-job', env);
      return s.counts.succeeded === 1 && s.running.some((t: any) => t.task === 2 && t.tags.percent_complete === '40');
    });

    // Status while task 2 runs: its tag with the time it was set; an ETA from the finished task.
    const s = await statusJson('live-job', env);
    const run = s.running.find((t: any) => t.task === 2);
    expect(Date.now() - Date.parse(run.tagTimes.percent_complete)).toBeLessThan(30_000);
    expect(s.eta).toMatchObject({ finishedTasks: 1, slots: 1 });
    expect(s.eta.seconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(s.eta.at)).toBeGreaterThan(Date.now() - 60_000);
    const text = await gq(['status', 'live-job'], env);
    expect(text.stdout).toMatch(/ETA: (~\d+ s \(at \d\d:\d\d UTC\)|due now \(.*\)), from 1 finished task\(s\) averaging \d+ s on 1 slot\(s\)/);
    expect(text.stdout).toMatch(/task 2 on \S+ \(attempt 1\) {2}percent_complete=40 \(\d+ s ago\)/);

    // Follow task 2: its first line arrives while it still runs (it waits for the gate).
    const child = spawn(process.execPath, [GQ, 'logs', 'live-job', '2', '--follow'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    await waitFor('the first line, followed', async () => out.includes('first line'), 20_000);
    expect(out).not.toContain('second line');
    expect((await statusJson('live-job', env)).counts.running).toBe(1);
    writeFileSync(gate, '');
    const code2 = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-2), 20_000))]);
    if (code2 === -2) child.kill('SIGKILL');
    expect(code2, err).toBe(1);
    expect(out).toBe('first line\nsecond line\n');
    expect(err).toMatch(/task 2 failed, exit code 3 after 1 attempt/);

    // A finished task: --follow prints its log and says how it ended (exit 0: it succeeded).
    const done = await gq(['logs', 'live-job', '1', '--follow'], env);
    expect(done).toMatchObject({ code: 0, stdout: 'one\n' });
    expect(done.stderr).toMatch(/task 1 succeeded/);
    // --follow follows a task: without one (or with --instance) it says so and does nothing.
    for (const args of [['logs', 'live-job', '--follow'], ['logs', 'live-job', '1', '--follow', '--instance', 'w']]) {
      const bad = await gq(args, env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/--follow follows a task/);
    }
    // With nothing left: no ETA line.
    expect((await gq(['status', 'live-job'], env)).stdout).not.toMatch(/ETA/);
  });

  it('a worker with one slot whose task failed shows IDLE in gq status at once, while it waits for the retry', async () => {
    // One worker of one slot; its only task fails twice (each retry comes back after a pause of
    // 2 s, then 4 s) and then waits on a gate. Between attempts the worker has nothing to run and
    // must stay (the retry needs it): it is shown IDLE then, not BUSY until it runs again.
    const { code, env, home } = setUp('live-idle', { GQ_IDLE: '20' });
    const gate = join(home, 'gate');
    const count = join(home, 'count');
    const file = jobFile(home, [
      `n=$(( $(cat ${count} 2>/dev/null || echo 0) + 1 )); echo $n > ${count}; [ $n -ge 3 ] || exit 3; while [ ! -e ${gate} ]; do sleep 0.1; done; printf 'id\\n1\\n' > results.csv`,
    ]);
    expect((await gq(['submit', file, '--code', code, '--name', 'idle-job', '--workers', '1', '--retries', '2'], env)).code).toBe(0);
    const idle = await waitFor('the worker shown idle between attempts', async () => {
      const st = await statusJson('idle-job', env);
      return st.instances.some((i: any) => i.state === 'IDLE') ? st : false;
    }, 20_000, 100);
    expect(idle.instances.map((i: any) => i.state)).toEqual(['IDLE']);
    expect(idle.running).toEqual([]);
    expect(idle.counts.queued).toBe(1);
    // It stayed: the same worker runs the third attempt (BUSY again), and no other was started.
    const busy = await waitFor('the third attempt running', async () => {
      const st = await statusJson('idle-job', env);
      return st.running.length === 1 ? st : false;
    }, 20_000, 100);
    expect(busy.instances.map((i: any) => [i.instance, i.state])).toEqual([[idle.instances[0].instance, 'BUSY']]);
    writeFileSync(gate, '');
    await waitFor('the job to end', async () => (await statusJson('idle-job', env)).counts.succeeded === 1, 30_000);
  });
});
