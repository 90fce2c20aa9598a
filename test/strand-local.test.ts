/**
 * Tasks that must not strand, local backend: the job finishes with no `gq` command after the
 * submit (a gq command's reconcile would restart workers and hide the fault), read from the
 * status store directly.
 * - the last worker stays while a failed attempt waits out its retry delay elsewhere;
 * - a message lost (as SQS drops one after its retention period; removed by hand here) is sent
 *   again by the worker that stays idle, or by the next gq command when no worker is left;
 * - the workers and queues of a finished job are removed without `gq clean`; gq retry makes them again.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLocalBackend } from '../packages/common/src/local/index.js';
import type { JobRecord } from '../packages/common/src/index.js';
import { expectNoProcessesLeft, gq, gqEnv, pidsMatching, testHome, waitFor } from './support/cli.js';

interface Scenario {
  home: string;
  env: NodeJS.ProcessEnv;
  code: string;
  runs: string;
  job: string;
}

const homes: string[] = [];

function setup(label: string): Scenario {
  const home = testHome(`strand-${label}`);
  homes.push(home);
  const code = join(home, 'code');
  const runs = join(home, 'runs');
  mkdirSync(code, { recursive: true });
  mkdirSync(runs, { recursive: true });
  writeFileSync(join(code, 'README'), 'strand scenario code\n');
  return { home, env: gqEnv(home), code, runs, job: `st-${label}` };
}

function task(s: Scenario, n: number, body = 'true'): string {
  return `echo "$GQ_ATTEMPT $GQ_INSTANCE" >> ${s.runs}/t${n}; ${body}; printf 'id\\n${n}\\n' > results.csv`;
}

function jobFile(s: Scenario, rows: string[]): string {
  const f = join(s.home, 'jobs.csv');
  writeFileSync(f, ['instance_type,command', ...rows.map((r) => `local,"${r.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return f;
}

function runsOf(s: Scenario, n: number): string[] {
  const f = join(s.runs, `t${n}`);
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
}

async function submit(s: Scenario, rows: string[], args: string[]): Promise<void> {
  const r = await gq(['submit', jobFile(s, rows), '--code', s.code, '--name', s.job, '--json', ...args], s.env, { timeoutMs: 60_000 });
  expect(r.stderr).not.toMatch(/internal error/);
  expect(r.code, r.stderr).toBe(0);
}

/** The job's record, read from the store (no gq command: no reconcile). */
async function jobOf(s: Scenario): Promise<JobRecord | undefined> {
  const b = openLocalBackend({ home: s.env.GQ_HOME! });
  try {
    return await b.status.getJob(s.job);
  } finally {
    await b.close();
  }
}

async function finished(s: Scenario, timeoutMs = 30_000): Promise<JobRecord> {
  return waitFor(`job ${s.job} to finish by itself`, async () => {
    const j = await jobOf(s);
    return j && j.counts.queued + j.counts.running === 0 ? j : undefined;
  }, timeoutMs, 200);
}

async function workersGone(s: Scenario, timeoutMs = 20_000): Promise<void> {
  await waitFor('the workers to exit', async () => pidsMatching(s.home).length === 0, timeoutMs);
}

/** Take the one visible message of the job's queue and delete it: a message SQS dropped. */
async function loseVisibleMessage(s: Scenario): Promise<number> {
  const b = openLocalBackend({ home: s.env.GQ_HOME! });
  try {
    const q = await b.queues.open(s.job, 'local');
    const [m] = await waitFor('a visible message', async () => {
      const got = await q.receive({ max: 1, waitSeconds: 1, visibilitySeconds: 60 });
      return got.length > 0 ? got : undefined;
    });
    await q.delete(m!.receipt);
    return m!.task;
  } finally {
    await b.close();
  }
}

afterEach(async () => {
  await expectNoProcessesLeft(homes, expect);
});

describe('local backend: tasks that must not strand', () => {
  it('the last worker stays while a failed attempt waits for its retry elsewhere; the job then finishes', async () => {
    const s = setup('retry');
    // Task 1 fails its first attempt after the other worker is idle; its retry is given back with
    // a 2 s delay, longer than the 1 s idle period: a worker that looked only at visible messages left.
    const rows = [task(s, 1, 'sleep 1.5; [ "$GQ_ATTEMPT" -gt 1 ] || exit 3'), task(s, 2)];
    await submit(s, rows, ['--workers', '2', '--idle', '1s', '--retries', '1']);
    const j = await finished(s);
    expect(j.counts).toEqual({ queued: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 });
    expect(runsOf(s, 1).map((l) => l.split(' ')[0])).toEqual(['1', '2']);
    await workersGone(s);
  });

  it('a message lost from the queue is sent again by the worker that stays', async () => {
    const s = setup('lost');
    await submit(s, [task(s, 1, 'sleep 2'), task(s, 2, 'sleep 2')], ['--workers', '1', '--idle', '1s']);
    // One worker runs one task; the other task's message is the only visible one: lose it.
    const lost = await loseVisibleMessage(s);
    const j = await finished(s);
    expect(j.counts.succeeded).toBe(2);
    expect(runsOf(s, lost)).toHaveLength(1);
    await workersGone(s);
  });

  it('a gq command re-sends lost messages and starts a worker when none is left', async () => {
    const s = setup('reconcile');
    const once = join(s.home, 'failed-once');
    await submit(s, [task(s, 1, `[ -e ${once} ] || { touch ${once}; exit 3; }`)], ['--workers', '1', '--idle', '1s', '--retries', '0']);
    expect((await finished(s)).counts.failed).toBe(1);
    await workersGone(s);
    // The task QUEUED again in the store, its message never sent (as if SQS had dropped it),
    // and no worker left: only a gq command can bring it back.
    const b = openLocalBackend({ home: s.env.GQ_HOME! });
    try {
      expect((await b.status.resubmitFailed(s.job)).map((t) => t.task)).toEqual([1]);
    } finally {
      await b.close();
    }
    const st = await gq(['status', s.job, '--json'], s.env);
    expect(st.code, st.stderr).toBe(0);
    const j = await finished(s);
    expect(j.counts).toEqual({ queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0 });
    await workersGone(s);
  });

  it('the workers and queues of a finished job are removed without gq clean; gq retry makes them again', async () => {
    const s = setup('gone');
    const once = join(s.home, 'failed-once');
    const r = await gq(
      ['submit', jobFile(s, [task(s, 1), task(s, 2, `[ -e ${once} ] || { touch ${once}; exit 3; }`)]), '--code', s.code, '--name', s.job, '--workers', '2', '--retries', '0', '--wait', '--json'],
      s.env,
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(1); // one task failed
    const removed = async () => {
      const b = openLocalBackend({ home: s.env.GQ_HOME! });
      try {
        const queue = await b.queues.open(s.job, 'local').then(() => true, () => false);
        return { queue, fleet: existsSync(join(s.env.GQ_HOME!, 'fleet', s.job)) };
      } finally {
        await b.close();
      }
    };
    // Its workers were stopped (SIGTERM, they were idle) and its queue deleted.
    await workersGone(s);
    expect(await removed()).toEqual({ queue: false, fleet: false });
    const rr = await gq(['retry', s.job, '--failed', '--wait', '--json'], s.env, { timeoutMs: 60_000 });
    expect(rr.code, rr.stderr).toBe(0);
    expect((await jobOf(s))?.counts).toMatchObject({ succeeded: 2, failed: 0 });
    // Its workers were stopped (SIGTERM, they were idle) and its queue deleted.
    await workersGone(s);
    expect(await removed()).toEqual({ queue: false, fleet: false });
  });
});
