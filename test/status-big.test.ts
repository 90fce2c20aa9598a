/**
 * gq status on a job of several task pages (local backend, records written through the store's
 * own API: no task runs): the failures it shows are the first few, read with a bounded query and
 * counted from the job's counters; --tasks --json streams every task a page at a time and is
 * still one JSON document, with each instance type's counts.
 */
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { openLocalBackend } from '../packages/common/src/local/index.js';
import { keys } from '../packages/common/src/index.js';
import { GQ, gq, gqEnv, ROOT, testHome } from './support/cli.js';

/**
 * gq with a reader that takes nothing for `pauseMs` (then everything), or that closes its end
 * after the first chunk (`| head`).
 */
function gqSlowReader(args: string[], how: { pauseMs: number } | 'close-early'): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [GQ, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (how === 'close-early') {
      child.stdout.once('data', (d: Buffer) => {
        stdout = d.toString();
        child.stdout.destroy();
      });
    } else {
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), how.pauseMs);
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    }
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

const TASKS = 2_345; // three pages of 1,000
const FAILED = [7, 8, 1500, 1501, 1502, 1503, 1504, 1505, 1506, 1507, 1508, 2000, 2345];
const BIG_LOG = Array.from({ length: 80_000 }, (_, i) => `line ${String(i).padStart(45, '.')}\n`).join('');
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
      // Task 1 printed 4 MB (more than any pipe holds): `gq logs big 1` writes it in one piece.
      const logKey = t === 1 ? keys.taskLog('big', 1) : undefined;
      if (logKey) await b.artifacts.putBytes(logKey, BIG_LOG);
      await b.status.complete('big', t, 'bench', failed ? { kind: 'failed', exitCode: 3 } : { kind: 'succeeded', exitCode: 0, logKey });
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

  it('a reader slower than gq still gets all of it: gq exits only once its output is written (a pipe is written asynchronously)', async () => {
    const log = await gqSlowReader(['logs', 'big', '1'], { pauseMs: 1500 });
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout.length).toBe(BIG_LOG.length);
    expect(log.stdout === BIG_LOG).toBe(true);
    const r = await gqSlowReader(['status', 'big', '--tasks', '--json'], { pauseMs: 1500 });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tasks).toHaveLength(TASKS);
  });

  it('a reader that goes away (| head) ends nothing badly: exit 0, no error printed', async () => {
    const r = await gqSlowReader(['status', 'big', '--tasks'], 'close-early');
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
