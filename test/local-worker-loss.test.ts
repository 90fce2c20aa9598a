/**
 * Local backend, real CLI and real worker processes:
 *  - a worker killed with SIGKILL while it runs a task: its task runs again within seconds (a
 *    surviving worker sees that the holder's process is gone), not after the whole lease;
 *  - a command that exits while a process it put in the background still holds its output is
 *    recorded when the command exits, and the leftover is killed with its process group.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLocalBackend, processAlive } from '../packages/common/src/local/index.js';
import { expectNoProcessesLeft, gq, gqEnv, statusJson, testHome, waitFor } from './support/cli.js';

const homes: string[] = [];

function setup(label: string, extra: Record<string, string>) {
  const home = testHome(`loss-${label}`);
  homes.push(home);
  const code = join(home, 'code');
  const runs = join(home, 'runs');
  mkdirSync(code, { recursive: true });
  mkdirSync(runs, { recursive: true });
  writeFileSync(join(code, 'README'), 'code\n');
  return { home, code, runs, env: gqEnv(home, extra), job: `loss-${label}` };
}

function jobFile(home: string, rows: string[]): string {
  const f = join(home, 'jobs.csv');
  writeFileSync(f, ['instance_type,command', ...rows.map((r) => `local,"${r.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return f;
}

const lines = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : []);

afterEach(async () => {
  await expectNoProcessesLeft(homes, expect);
});

describe('local backend: lost workers and leftover processes', () => {
  it('the task of a worker killed with SIGKILL runs again within 10 s (lease: 5 minutes)', async () => {
    const s = setup('kill', { GQ_VISIBILITY: '300', GQ_IDLE: '6' });
    // Task 1 records each start and its shell's pid; its first attempt would run for a minute.
    const t1 = `echo "$GQ_ATTEMPT $GQ_INSTANCE" >> ${s.runs}/t1; echo $$ > ${s.runs}/pid1-$GQ_ATTEMPT; ` +
      `if [ "$GQ_ATTEMPT" = 1 ]; then sleep 60; fi; printf 'id\\n1\\n' > results.csv`;
    // Task 2 keeps the other worker busy past the kill (an idle worker would leave at once, with
    // nothing left that it could run): it is there, receiving, when task 1's holder dies.
    const t2 = `sleep 4; printf 'id\\n2\\n' > results.csv`;
    const r = await gq(['submit', jobFile(s.home, [t1, t2]), '--code', s.code, '--name', s.job, '--workers', '2', '--json'], s.env);
    expect(r.code, r.stderr).toBe(0);

    const holder = await waitFor('task 1 to run', async () => (lines(join(s.runs, 't1')).length === 1 ? lines(join(s.runs, 't1'))[0]!.split(' ')[1] : undefined));
    const backend = openLocalBackend({ home: s.env.GQ_HOME! });
    let pid: number;
    try {
      pid = (await backend.status.listInstances(s.job)).find((i) => i.instance === holder)!.pid!;
    } finally {
      await backend.close();
    }
    const firstRun = Number(readFileSync(join(s.runs, 'pid1-1'), 'utf8'));
    expect(processAlive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();

    // The other worker takes it over: attempt 2, on another worker, within seconds.
    await waitFor('task 1 to run again', async () => lines(join(s.runs, 't1')).length === 2, 10_000, 50);
    const rerunMs = Date.now() - killedAt;
    console.log(`dead-worker task rerun ${rerunMs} ms after SIGKILL`);
    expect(rerunMs).toBeLessThan(10_000);
    const [, second] = lines(join(s.runs, 't1'));
    expect(second!.split(' ')[0]).toBe('2');
    expect(second!.split(' ')[1]).not.toBe(holder);
    // The dead worker's command was stopped before the retry started.
    expect(processAlive(firstRun)).toBe(false);

    const st = await waitFor('the job to finish', async () => {
      const j = await statusJson(s.job, s.env, true);
      return j.counts.queued + j.counts.running === 0 ? j : undefined;
    }, 30_000, 300);
    expect(st.counts).toMatchObject({ succeeded: 2, failed: 0 });
    expect(st.tasks.find((t: any) => t.task === 1)).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
  });

  it('a command that leaves `sleep 600 &` behind is recorded within 2 s of its exit', async () => {
    const s = setup('bg', { GQ_VISIBILITY: '60', GQ_IDLE: '1' });
    const t1 = `printf 'id\\n1\\n' > results.csv; echo before-exit; echo on-stderr >&2; sleep 600 & echo $! > ${s.runs}/bg; ` +
      `date +%s%3N > ${s.runs}/exit-at`;
    const r = await gq(['submit', jobFile(s.home, [t1]), '--code', s.code, '--name', s.job, '--workers', '1', '--wait', '--json'], s.env, {
      timeoutMs: 30_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const st = await statusJson(s.job, s.env, true);
    const t = st.tasks.find((x: any) => x.task === 1);
    expect(t).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    const exitAt = Number(readFileSync(join(s.runs, 'exit-at'), 'utf8'));
    const recordedAfter = Date.parse(t.finishedAt) - exitAt;
    console.log(`task with a background process recorded ${recordedAfter} ms after its command exited`);
    expect(recordedAfter).toBeLessThan(2000);
    // The leftover went with the task's process group.
    expect(processAlive(Number(readFileSync(join(s.runs, 'bg'), 'utf8')))).toBe(false);
    // Its log holds what it wrote before it exited.
    const logs = await gq(['logs', s.job, '1'], s.env);
    expect(logs.stdout).toContain('before-exit');
    expect(logs.stdout).toContain('on-stderr');
  });
});
