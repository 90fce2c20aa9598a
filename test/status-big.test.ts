/**
 * gq status on a job of several task pages (local backend, records written through the store's
 * own API: no task runs): the failures it shows are the first few, read with a bounded query and
 * counted from the job's counters; --tasks --json streams every task a page at a time and is
 * still one JSON document, with each instance type's counts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { openLocalBackend } from '../packages/common/src/local/index.js';
import { gq, gqEnv, testHome } from './support/cli.js';

const TASKS = 2_345; // three pages of 1,000
const FAILED = [7, 8, 1500, 1501, 1502, 1503, 1504, 1505, 1506, 1507, 1508, 2000, 2345];
const home = testHome('status-big');
const env = gqEnv(home, { GQ_BACKEND: 'local' });

beforeAll(async () => {
  const b = openLocalBackend({ home: env.GQ_HOME!, agentCommand: [] });
  try {
    const now = new Date().toISOString();
    const typeOf = (task: number) => (task % 3 === 0 ? 'local-b' : 'local');
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ task: i + 1, instanceType: typeOf(i + 1), command: `echo ${i + 1}` }));
    const byType: Record<string, number> = {};
    for (const t of tasks) byType[t.instanceType] = (byType[t.instanceType] ?? 0) + 1;
    await b.status.createJob(
      {
        name: 'big', backend: 'local', createdAt: now, total: TASKS, instanceTypes: byType, codeKey: 'bundles/none.tar.gz', resultsPath: 'results.csv',
        outputs: [], maxAttempts: 1, timeoutSeconds: 0, installTimeoutSeconds: 60, installAttempts: 1, visibilitySeconds: 60, idleSeconds: 1,
      },
      tasks,
    );
    for (const t of [...FAILED, 1, 2, 3]) {
      await b.status.claim('big', t, 'bench', 60_000);
      const failed = FAILED.includes(t);
      await b.status.complete('big', t, 'bench', failed ? { kind: 'failed', exitCode: 3 } : { kind: 'succeeded', exitCode: 0 });
    }
  } finally {
    await b.close();
  }
});


describe('gq status of a job of several pages', () => {
  it('shows the first failures and counts the rest', async () => {
    const r = await gq(['status', 'big'], env);
    expect(r.code, r.stderr).toBe(0);
    const shown = [...r.stdout.matchAll(/^ {4}task (\d+): exit code 3/gm)].map((m) => Number(m[1]));
    expect(shown).toEqual(FAILED.slice(0, 10));
    expect(r.stdout).toContain(`... and ${FAILED.length - 10} more (gq status big --tasks --json)`);
    const j = JSON.parse((await gq(['status', 'big', '--json'], env)).stdout);
    expect(j.counts.failed).toBe(FAILED.length);
    expect(j.failures.map((f: { task: number }) => f.task)).toEqual(FAILED.slice(0, 10));
    expect(j.tasks).toBeUndefined();
  });

  it('--tasks --json: one JSON document with every task in order, after the summary, and the counts of each type', async () => {
    const r = await gq(['status', 'big', '--tasks', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(5); // head, three pages, end
    const j = JSON.parse(r.stdout);
    expect(j.tasks.map((t: { task: number }) => t.task)).toEqual(Array.from({ length: TASKS }, (_, i) => i + 1));
    expect(j.tasks[1499]).toMatchObject({ task: 1500, state: 'FAILED', exitCode: 3, command: 'echo 1500', instanceType: 'local-b' });
    const failedB = FAILED.filter((t) => t % 3 === 0).length;
    expect(j.instanceTypes['local-b'].counts).toEqual({ queued: 781 - failedB - 1, running: 0, succeeded: 1, failed: failedB, cancelled: 0 });
    expect(j.instanceTypes.local.counts.failed).toBe(FAILED.length - failedB);
    expect(j.counts.failed).toBe(FAILED.length);
  });

  it('--tasks (text): every task, one line each, after the summary', async () => {
    const r = await gq(['status', 'big', '--tasks'], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => /^ {4}\d+\t/.test(l));
    expect(lines).toHaveLength(TASKS);
    expect(lines[1499]).toMatch(/^ {4}1500\tFAILED\tlocal-b\t[^\t]+\techo 1500$/);
    expect(r.stdout.indexOf('  Failed:')).toBeLessThan(r.stdout.indexOf(lines[0]!));
  });
});
