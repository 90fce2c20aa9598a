/**
 * "Prove that nothing is lost", local backend: the fault scenarios with the real CLI and real
 * worker processes (the same agent as on EC2), faults injected with the agent's hooks
 * (GQ_TEST_FAULT, packages/agent/src/faults.ts; workers inherit the CLI's environment) or from
 * the test (SIGKILL, SIGTERM). Every scenario ends with the three checks of checkInvariants.
 *
 * Each task appends "<attempt> <worker>" to runs/t<N> (outside the task folder, so every start of
 * its command is seen) and writes a one-row results file with its own id.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, openLocalBackend } from '../packages/common/src/local/index.js';
import type { TaskState } from '../packages/common/src/index.js';
import { expectNoProcessesLeft, gq, gqEnv, pidsMatching, statusJson, testHome, waitFor } from './support/cli.js';
import { checkInvariants, type ResultsDeclared } from './support/invariants.js';

const slow = process.env.GQ_QUICK ? it.skip : it;

interface Scenario {
  home: string;
  env: NodeJS.ProcessEnv;
  code: string;
  runs: string;
  job: string;
  /** What its tasks write (checkInvariants): task() below writes a results file on success. */
  results: ResultsDeclared;
}

const homes: string[] = [];

function setup(label: string, extra: Record<string, string>, results: ResultsDeclared): Scenario {
  const home = testHome(`faults-${label}`);
  homes.push(home);
  const code = join(home, 'code');
  const runs = join(home, 'runs');
  mkdirSync(code, { recursive: true });
  mkdirSync(runs, { recursive: true });
  writeFileSync(join(code, 'README'), 'fault scenario code\n');
  return { home, env: gqEnv(home, extra), code, runs, job: `fl-${label}`, results };
}

/** A task: record this start, run `body`, then write a one-row results file (id = task number). */
function task(s: Scenario, n: number, body = 'true'): string {
  return `echo "$GQ_ATTEMPT $GQ_INSTANCE" >> ${s.runs}/t${n}; ${body}; printf 'id,attempt\\n${n},%s\\n' "$GQ_ATTEMPT" > results.csv`;
}

function jobFile(s: Scenario, rows: string[]): string {
  const f = join(s.home, 'jobs.csv');
  writeFileSync(f, ['instance_type,command', ...rows.map((r) => `local,"${r.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return f;
}

/** Starts of task n's command: one line per start, "<attempt> <worker>". */
function runsOf(s: Scenario, n: number): string[] {
  const f = join(s.runs, `t${n}`);
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
}

/** The workers' own logs (one file per worker). */
function workerLogs(s: Scenario): string {
  const dir = join(s.env.GQ_HOME!, 'logs', s.job);
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

async function invariants(s: Scenario, allowed?: TaskState[]): Promise<void> {
  const backend = openLocalBackend({ home: s.env.GQ_HOME! });
  try {
    await checkInvariants({
      status: backend.status,
      artifacts: backend.artifacts,
      job: s.job,
      env: s.env,
      out: join(s.home, 'out'),
      results: s.results,
      allowed,
      idColumn: 'id',
    });
  } finally {
    await backend.close();
  }
}

/** Follow the job with `gq status` (which also restarts workers when none is left) until it ends. */
async function untilDone(s: Scenario, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    `job ${s.job} to finish`,
    async () => {
      const st = await statusJson(s.job, s.env, true);
      return st.counts.queued + st.counts.running === 0 ? st : undefined;
    },
    timeoutMs,
    500,
  );
}

function byTask(st: any): Record<number, any> {
  return Object.fromEntries(st.tasks.map((t: any) => [t.task, t]));
}

afterEach(async () => {
  // No test leaves a process running: workers (and what their tasks started) exit by themselves.
  await expectNoProcessesLeft(homes, expect);
});

describe('local backend: an agent killed with SIGKILL mid-task', () => {
  // Where the agent dies, and what must follow: the task runs again (or not at all when it was
  // already recorded) and is recorded exactly once.
  const points = [
    { point: 'install', reruns: false, what: 'during its install script: it never took a task' },
    { point: 'after-claim', reruns: true, what: 'after claiming, before the command started' },
    { point: 'after-upload', reruns: true, what: 'between the upload and the status write' },
    { point: 'after-record', reruns: false, what: 'between the status write and the message delete' },
  ] as const;

  for (const p of points) {
    // Quick (about 5 s each): these run in `npm run test:quick` too.
    it(`kill:${p.point} — ${p.what}`, async () => {
      const s = setup(p.point, {}, 'every-task');
      const marker = join(s.home, 'fault-fired');
      s.env.GQ_TEST_FAULT = `kill:${p.point}@${marker}`;
      const install = join(s.home, 'INSTALL.sh');
      writeFileSync(install, 'echo installing; sleep 0.5; echo installed\n');
      const f = jobFile(s, [1, 2, 3].map((n) => task(s, n, 'sleep 0.5')));
      const r = await gq(
        ['submit', f, '--code', s.code, '--install', install, '--name', s.job, '--workers', '2', '--visibility', '2s', '--wait', '--json'],
        s.env,
        { timeoutMs: 90_000 },
      );
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 0, cancelled: 0 });

      // The fault fired, in a worker that is gone now.
      expect(existsSync(marker)).toBe(true);
      const victimPid = Number(readFileSync(marker, 'utf8'));
      expect(() => process.kill(victimPid, 0)).toThrow();

      const st = byTask(await statusJson(s.job, s.env, true));
      const hit = [1, 2, 3].filter((n) => st[n].attempts > 1);
      if (p.reruns) {
        // Exactly one task was hit; it ran again on a takeover (attempt 2) and succeeded.
        expect(hit).toHaveLength(1);
        const n = hit[0]!;
        expect(st[n]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
        // after-claim died before the command started; after-upload after it ran to its end.
        expect(runsOf(s, n).map((l) => l.split(' ')[0])).toEqual(p.point === 'after-claim' ? ['2'] : ['1', '2']);
        for (const m of [1, 2, 3].filter((x) => x !== n)) expect(runsOf(s, m)).toHaveLength(1);
      } else {
        // No task ran twice: install died before any claim; after-record's outcome was already recorded.
        expect(hit).toEqual([]);
        for (const n of [1, 2, 3]) expect(runsOf(s, n), `task ${n}`).toHaveLength(1);
      }
      await invariants(s);
    }, 120_000);
  }

  slow('killed while its task runs: what it ran is stopped, the task runs again elsewhere and is recorded once', async () => {
    const s = setup('running', { GQ_VISIBILITY: '2' }, 'every-task');
    // Task 1's first start would run for a minute; every later start is quick.
    const started = join(s.home, 'started-1');
    const f = jobFile(s, [task(s, 1, `if [ ! -e ${started} ]; then touch ${started}; sleep 59.7; fi`), task(s, 2), task(s, 3)]);
    expect((await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '2', '--json'], s.env)).code).toBe(0);
    const victim = await waitFor('task 1 to run', async () => {
      const st = await statusJson(s.job, s.env);
      return existsSync(started) ? st.running.find((r: any) => r.task === 1) : undefined;
    });
    const pids = pidsMatching(`--instance ${victim.instance}`);
    expect(pids.length).toBeGreaterThan(0);
    for (const p of pids) process.kill(p, 'SIGKILL');
    // The killed worker's command ran in its own process group and outlived it; `gq status`
    // (which finds the worker gone) stops it, as losing the machine would on EC2.
    await waitFor('the abandoned command to be stopped', async () => {
      await statusJson(s.job, s.env);
      return pidsMatching('sleep 59.7').length === 0;
    }, 15_000, 300);
    const done = await untilDone(s);
    expect(done.counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 0, cancelled: 0 });
    expect(byTask(done)[1].attempts).toBe(2);
    const starts = runsOf(s, 1);
    expect(starts).toHaveLength(2);
    expect(starts[0]).toContain(victim.instance);
    expect(starts[1]).not.toContain(victim.instance);
    for (const n of [2, 3]) expect(runsOf(s, n)).toHaveLength(1);
    // Nothing is left of the lost worker (its folder included).
    expect(existsSync(join(s.env.GQ_HOME!, 'work', s.job, victim.instance))).toBe(false);
    await invariants(s);
  }, 90_000);
});

describe('local backend: duplicate delivery and long tasks', () => {
  slow('a message delivered again while its task runs is hidden again, never run twice', async () => {
    // skip:extend: the heartbeat renews the lease but not the message, so the message comes back
    // every 2 s while task 1 runs for 6 s; the other worker receives it, sees the live lease.
    // Task 2 (3 s) keeps that worker there past the first return (an idle worker leaves at once
    // while the other is busy: nothing is left that it could run).
    const s = setup('dup', { GQ_TEST_FAULT: 'skip:extend', GQ_VISIBILITY: '2', GQ_IDLE: '4' }, 'every-task');
    const f = jobFile(s, [task(s, 1, 'sleep 6'), task(s, 2, 'sleep 3')]);
    expect((await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '2', '--json'], s.env)).code).toBe(0);
    // The duplicate delivery really happened (the message was received again while task 1 ran).
    const db = openDb(s.env.GQ_HOME!);
    try {
      await waitFor('a second delivery of task 1', async () => {
        const row = db.prepare('SELECT MAX(receive_count) AS n FROM messages WHERE task = 1').get() as { n: number | null };
        return (row.n ?? 0) >= 2;
      }, 20_000);
    } finally {
      db.close();
    }
    const done = await untilDone(s);
    expect(done.counts).toMatchObject({ succeeded: 2, failed: 0 });
    expect(byTask(done)[1].attempts).toBe(1);
    expect(runsOf(s, 1)).toHaveLength(1);
    expect(workerLogs(s)).toMatch(/delivered again while its lease is held/);
    await invariants(s);
  }, 90_000);

  slow('a duplicated task whose attempt fails is retried once, by the queue, not twice', async () => {
    // As above, but attempt 1 fails after the message was delivered to the other worker: the
    // retry must give the message back although this worker's receipt is no longer current.
    const s = setup('dup-fail', { GQ_TEST_FAULT: 'skip:extend', GQ_VISIBILITY: '2', GQ_IDLE: '4' }, 'every-task');
    const f = jobFile(s, [task(s, 1, 'if [ "$GQ_ATTEMPT" = 1 ]; then sleep 5; echo first attempt fails >&2; exit 3; fi'), task(s, 2, 'sleep 3')]);
    const r = await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '2', '--retries', '1', '--wait', '--json'], s.env, {
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const st = byTask(await statusJson(s.job, s.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
    expect(runsOf(s, 1).map((l) => l.split(' ')[0])).toEqual(['1', '2']);
    // The worker whose receipt went stale sent the task again for its retry, and did not die of it.
    expect(workerLogs(s)).toMatch(/delivered again while the task ran; sending the task again/);
    expect(workerLogs(s)).not.toMatch(/internal error/);
    await invariants(s);
  }, 120_000);

  slow('a task running longer than the visibility timeout is kept by its heartbeat', async () => {
    const s = setup('long', { GQ_VISIBILITY: '3', GQ_IDLE: '2' }, 'every-task');
    const f = jobFile(s, [task(s, 1, 'sleep 10'), task(s, 2), task(s, 3)]);
    const r = await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '2', '--wait', '--json'], s.env, { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const st = byTask(await statusJson(s.job, s.env, true));
    expect(st[1]).toMatchObject({ state: 'SUCCEEDED', attempts: 1 });
    for (const n of [1, 2, 3]) expect(runsOf(s, n)).toHaveLength(1);
    expect(workerLogs(s)).not.toMatch(/delivered again/);
    await invariants(s);
  }, 90_000);
});

describe('local backend: poison tasks', () => {
  slow('a task that always fails and one that kills its own agent end FAILED after their limit', async () => {
    const s = setup('poison', { GQ_VISIBILITY: '2' }, 'every-task');
    const f = jobFile(s, [
      task(s, 1, 'echo always broken >&2; exit 5'),
      task(s, 2, 'kill -9 $PPID; sleep 1'),
      task(s, 3),
      task(s, 4),
      task(s, 5),
    ]);
    const r = await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '2', '--retries', '1', '--wait', '--json'], s.env, {
      timeoutMs: 120_000,
    });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(1); // some tasks failed
    const st = await statusJson(s.job, s.env, true);
    expect(st.counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 2, cancelled: 0 });
    const t = byTask(st);
    expect(t[1]).toMatchObject({ state: 'FAILED', attempts: 2, exitCode: 5 });
    expect(t[1].stderrTail).toContain('always broken');
    expect(t[2]).toMatchObject({ state: 'FAILED', attempts: 2 });
    expect(t[2].error).toMatch(/lost during attempt 2 of 2/);
    // Each ran exactly its two attempts, the others once.
    expect(runsOf(s, 1)).toHaveLength(2);
    expect(runsOf(s, 2)).toHaveLength(2);
    for (const n of [3, 4, 5]) expect(runsOf(s, n)).toHaveLength(1);
    expect(st.failures.map((x: any) => x.task)).toEqual([1, 2]);
    const text = await gq(['status', s.job], s.env);
    expect(text.stdout).toMatch(/task 1: exit code 5 after 2 attempt/);
    expect(text.stdout).toMatch(/task 2: .*after 2 attempt.*lost/);
    await invariants(s);
  }, 150_000);

  slow('a message that reached the dead-letter queue is reported and its task does not hang the job', async () => {
    // One worker is busy with task 1; meanwhile task 2's message is received (by the test) until
    // the queue moves it to the dead-letter queue: no worker will ever see it again.
    const s = setup('dlq', { GQ_IDLE: '1' }, 'every-task');
    const f = jobFile(s, [task(s, 1, 'sleep 4'), task(s, 2)]);
    expect((await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '1', '--json'], s.env)).code).toBe(0);
    const backend = openLocalBackend({ home: s.env.GQ_HOME! });
    try {
      const q = await backend.queues.open(s.job, 'local');
      await waitFor('task 1 to run', async () => (await backend.status.getTask(s.job, 1))?.state === 'RUNNING');
      for (let i = 0; i < 40 && (await q.deadLetters()).length === 0; i++) {
        await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 0 });
      }
      expect(await q.deadLetters()).toEqual([2]);
    } finally {
      await backend.close();
    }
    // `gq submit --wait` (the same job again: it resumes and follows it) must end, and say why.
    const r = await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '1', '--wait'], s.env, { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    const st = await statusJson(s.job, s.env, true);
    expect(st.counts).toMatchObject({ queued: 0, running: 0, succeeded: 1, failed: 1 });
    expect(byTask(st)[2].state).toBe('FAILED');
    expect(byTask(st)[2].error).toMatch(/dead-letter queue/);
    expect(runsOf(s, 2)).toEqual([]);
    const text = await gq(['status', s.job], s.env);
    expect(text.stdout).toMatch(/task 2: .*dead-letter queue/);
    await invariants(s);
    // And it can be run again.
    const again = await gq(['retry', s.job, '--failed', '--wait', '--json'], s.env, { timeoutMs: 60_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(runsOf(s, 2)).toHaveLength(1);
    await invariants(s);
  }, 120_000);
});

describe('local backend: install scripts that fail or hang', () => {
  for (const kind of ['fails', 'hangs'] as const) {
    slow(`an install script that ${kind} every time: bounded retries, recorded, no task consumed, --wait stops`, async () => {
      const s = setup(`install-${kind}`, {}, 'every-task');
      const install = join(s.home, 'INSTALL.sh');
      writeFileSync(
        install,
        kind === 'fails'
          ? `echo "attempt at $(date +%s)" >> ${s.runs}/install\necho "cannot find julia" >&2\nexit 4\n`
          : // Ignores SIGTERM too: only the KILL after the grace period ends it.
            `echo "attempt at $(date +%s)" >> ${s.runs}/install\ntrap '' TERM\necho hanging\nsleep 600\n`,
      );
      const f = jobFile(s, [task(s, 1), task(s, 2)]);
      const t0 = Date.now();
      const r = await gq(
        ['submit', f, '--code', s.code, '--install', install, '--install-retries', '1', '--install-timeout', '2s', '--name', s.job, '--workers', '2', '--wait'],
        s.env,
        { timeoutMs: 90_000 },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/install script failed on every worker/);
      expect(r.stderr).toMatch(kind === 'fails' ? /exited with code 4.*cannot find julia/ : /timed out after 2s/);
      expect(Date.now() - t0).toBeLessThan(60_000);

      const st = await statusJson(s.job, s.env, true);
      expect(st.instances).toHaveLength(2);
      for (const i of st.instances) {
        expect(i.state).toBe('INSTALL_FAILED');
        expect(i.detail).toMatch(/after 2 attempts/);
      }
      // Bounded: two attempts per worker, then the worker left.
      expect(readFileSync(join(s.runs, 'install'), 'utf8').trim().split('\n')).toHaveLength(4);
      await waitFor('the workers to exit', async () => pidsMatching(s.home).length === 0, 20_000);
      // No task consumed: both still queued, never attempted, their messages still in the queue.
      expect(st.counts).toMatchObject({ queued: 2, running: 0, succeeded: 0, failed: 0 });
      expect(st.tasks.map((t: any) => t.attempts)).toEqual([0, 0]);
      expect(runsOf(s, 1)).toEqual([]);
      const backend = openLocalBackend({ home: s.env.GQ_HOME! });
      try {
        expect(await (await backend.queues.open(s.job, 'local')).depth()).toMatchObject({ visible: 2, inFlight: 0 });
      } finally {
        await backend.close();
      }
      const text = await gq(['status', s.job], s.env);
      expect(text.stdout).toMatch(/Install failed on .*after 2 attempts/);
      expect(text.stdout).toMatch(/gq logs .* --instance /);
      // gq status does not start workers again for an install that can only fail again.
      expect(pidsMatching(s.home)).toEqual([]);
      const log = await gq(['logs', s.job, '--instance', st.instances[0].instance], s.env);
      expect(log.stdout).toContain('install attempt 2 of 2');
      expect(log.stdout).toMatch(kind === 'fails' ? /cannot find julia/ : /hanging[\s\S]*install timed out after 2s/);
      await invariants(s, ['QUEUED']);
    }, 120_000);
  }
});

describe('local backend: a worker asked to stop twice (the local analogue of a Spot interruption)', () => {
  it('two SIGTERMs: the task is given back at once, not charged, and the worker takes no more work', async () => {
    const s = setup('sigterm', { GQ_VISIBILITY: '3' }, 'every-task');
    // Only the first start runs long; the rerun is quick.
    const f = jobFile(s, [task(s, 1, `if [ ! -e ${s.home}/started ]; then touch ${s.home}/started; sleep 30; fi`)]);
    expect((await gq(['submit', f, '--code', s.code, '--name', s.job, '--workers', '1', '--json'], s.env)).code).toBe(0);
    const victim = await waitFor('task 1 to run', async () => (await statusJson(s.job, s.env)).running[0]);
    const [pid] = pidsMatching(`--instance ${victim.instance}`);
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid!, 'SIGTERM');
    const t0 = Date.now();
    const backend = openLocalBackend({ home: s.env.GQ_HOME! });
    try {
      const back = await waitFor('task 1 to be given back', async () => {
        const t = await backend.status.getTask(s.job, 1);
        return t && t.state === 'QUEUED' ? t : undefined;
      }, 10_000, 100);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(back.attempts).toBe(0); // the interrupted attempt is not charged
      await waitFor('the worker to exit', async () => pidsMatching(`--instance ${victim.instance}`).length === 0, 10_000);
    } finally {
      await backend.close();
    }
    // The job finishes elsewhere (gq status starts a worker), with one charged attempt.
    const done = await untilDone(s, 60_000);
    const t = byTask(done)[1];
    expect(t.state).toBe('SUCCEEDED');
    // attempts counts charged attempts: the interrupted run was given back uncharged, so the
    // final count equals the attempts that ran to an outcome (1), while the command started twice.
    expect(t.attempts).toBe(1);
    const starts = runsOf(s, 1);
    expect(starts).toHaveLength(2);
    expect(starts[0]).toContain(victim.instance);
    expect(starts[1]).not.toContain(victim.instance);
    await invariants(s);
  }, 120_000);
});
