/**
 * The whole job loop on the local backend, through the real CLI and real worker processes.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { parse } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { gq, gqEnv, killAll, pidsMatching, ROOT, statusJson, testHome, waitFor } from './support/cli.js';

const homes: string[] = [];
function setup(label: string, extra: Record<string, string> = {}) {
  const home = testHome(label);
  homes.push(home);
  const env = gqEnv(home, extra);
  const code = join(home, 'code');
  mkdirSync(code, { recursive: true });
  return { home, env, code };
}

function jobFile(dir: string, rows: string[], type = 'local'): string {
  const f = join(dir, 'jobs.csv');
  writeFileSync(f, ['instance_type,command', ...rows.map((r) => `${type},"${r.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return f;
}

afterEach(async () => {
  // No test leaves a process running: workers exit by themselves; anything left is a failure.
  for (const h of homes.splice(0)) {
    const left = await waitFor('workers to exit', async () => pidsMatching(h).length === 0, 15_000).catch(() => false);
    const killed = killAll(h);
    expect(left, `processes left running for ${h}`).toBe(true);
    expect(killed).toBe(0);
  }
});

describe('local backend, whole job through the CLI', () => {
  it('runs the example job and merges the results cell by cell', async () => {
    const { env, home } = setup('example');
    const sub = await gq(
      ['submit', 'config/jobdetails.csv', '--code', 'config/example', '--install', 'config/example/INSTALL.sh', '--name', 'example-job', '--workers', '2', '--wait', '--json'],
      env,
      { timeoutMs: 90_000 },
    );
    expect(sub.stderr).not.toMatch(/internal error/);
    expect(sub.code).toBe(0);
    const final = JSON.parse(sub.stdout);
    expect(final).toMatchObject({ name: 'example-job', backend: 'local', total: 5, counts: { queued: 0, running: 0, succeeded: 5, failed: 0, cancelled: 0 } });

    const out = join(home, 'out');
    const res = await gq(['results', 'example-job', '--out', out], env);
    expect(res.code).toBe(0);
    const merged = parse(readFileSync(join(out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(merged.map((r) => r.task)).toEqual(['1', '2', '3', '4', '5']);
    for (const row of merged) {
      const own = parse(readFileSync(join(out, 'tasks', row.task!, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
      expect(own).toHaveLength(1);
      for (const [k, v] of Object.entries(own[0]!)) expect(row[k], `task ${row.task} column ${k}`).toBe(v);
      expect(row.seed).toBe(row.task);
      expect(Math.abs(Number(row.pi_estimate) - Math.PI)).toBeLessThan(0.05);
      expect(row.note).toContain('"t3.small"'); // a field with a comma and quotes survives the merge
      expect(existsSync(join(out, 'tasks', row.task!, 'log.txt'))).toBe(true);
    }
    // Running it twice is safe and gives the same file.
    const first = readFileSync(join(out, 'results.csv'), 'utf8');
    expect((await gq(['results', 'example-job', '--out', out], env)).code).toBe(0);
    expect(readFileSync(join(out, 'results.csv'), 'utf8')).toBe(first);

    // Progress tags reported with `gq-agent tag` are recorded on the tasks.
    const st = await statusJson('example-job', env, true);
    expect(st.tasks.map((t: any) => t.tags.percent_complete)).toEqual(['100', '100', '100', '100', '100']);
    const logs = await gq(['logs', 'example-job', '3'], env);
    expect(logs.stdout).toContain('seed 3: pi is about');
  });

  it('retries a task that fails once, fails one that always fails, and keeps the others', async () => {
    const { env, home, code } = setup('retry');
    const marks = join(home, 'marks');
    mkdirSync(marks);
    const f = jobFile(home, [
      'echo a,b > results.csv; echo 1,2 >> results.csv',
      `if [ -e ${marks}/once ]; then echo x > results.csv; else touch ${marks}/once; echo boom >&2; exit 3; fi`,
      'echo always failing >&2; exit 7',
      'echo ok > results.csv',
    ]);
    const r = await gq(['submit', f, '--code', code, '--name', 'retry-job', '--retries', '1', '--workers', '2', '--wait', '--json'], env, { timeoutMs: 60_000 });
    expect(r.code).toBe(1); // a task failed
    const s = await statusJson('retry-job', env, true);
    expect(s.counts).toEqual({ queued: 0, running: 0, succeeded: 3, failed: 1, cancelled: 0 });
    const byTask = Object.fromEntries(s.tasks.map((t: any) => [t.task, t]));
    expect(byTask[2]).toMatchObject({ state: 'SUCCEEDED', attempts: 2 });
    expect(byTask[3]).toMatchObject({ state: 'FAILED', attempts: 2, exitCode: 7 });
    expect(byTask[3].stderrTail).toContain('always failing');
    expect(s.failures).toEqual([expect.objectContaining({ task: 3, exitCode: 7 })]);
    const text = await gq(['status', 'retry-job'], env);
    expect(text.stdout).toMatch(/task 3: exit code 7 after 2 attempt/);
  });

  it('a worker starts without NODE_EXTRA_CA_CERTS (no TLS to set up); its install script and tasks get it back as it was', async () => {
    const { env, home, code } = setup('ca-certs');
    // A real PEM (Node warns at start about a file it cannot load): one of Node's own roots.
    const ca = join(home, 'extra-ca.pem');
    writeFileSync(ca, `${rootCertificates[0]}\n`);
    const seen = join(home, 'seen');
    mkdirSync(seen);
    const install = join(home, 'INSTALL.sh');
    writeFileSync(install, `printf '%s' "$NODE_EXTRA_CA_CERTS" > ${seen}/install\n`);
    // The task's parent is its worker: /proc/$PPID/environ is what the worker was started with.
    const f = jobFile(home, [
      `printf '%s' "$NODE_EXTRA_CA_CERTS" > ${seen}/task; tr '\\0' '\\n' < /proc/$PPID/environ > ${seen}/worker; env > ${seen}/task-env; echo x > results.csv`,
    ]);
    const r = await gq(['submit', f, '--code', code, '--install', install, '--name', 'ca-job', '--workers', '1', '--wait', '--json'], { ...env, NODE_EXTRA_CA_CERTS: ca });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/extra certs/i);
    expect(readFileSync(join(seen, 'task'), 'utf8')).toBe(ca);
    expect(readFileSync(join(seen, 'install'), 'utf8')).toBe(ca);
    const workerEnv = readFileSync(join(seen, 'worker'), 'utf8').split('\n');
    expect(workerEnv.filter((l) => l.startsWith('NODE_EXTRA_CA_CERTS='))).toEqual([]);
    expect(workerEnv).toContain(`GQ_HELD_NODE_EXTRA_CA_CERTS=${ca}`);
    // Nor does a task see the worker's carrier variable.
    expect(readFileSync(join(seen, 'task-env'), 'utf8')).not.toContain('GQ_HELD');
  });

  it('kills a task that exceeds its timeout and records it as failed', async () => {
    const { env, home, code } = setup('timeout');
    const f = jobFile(home, ['sleep 20; echo late > results.csv', 'echo on time > results.csv']);
    const t0 = Date.now();
    const r = await gq(['submit', f, '--code', code, '--name', 'timeout-job', '--timeout', '1s', '--retries', '0', '--workers', '2', '--wait', '--json'], env);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const s = await statusJson('timeout-job', env, true);
    expect(s.tasks[0]).toMatchObject({ state: 'FAILED', attempts: 1 });
    expect(s.tasks[0].error).toMatch(/timed out/);
    expect(s.tasks[1].state).toBe('SUCCEEDED');
  });

  it('runs a task again after its worker is killed with SIGKILL, and finishes it once', async () => {
    const { env, home, code } = setup('sigkill');
    const runs = join(home, 'runs');
    mkdirSync(runs);
    // Every task waits for the test's go-ahead (30 s at most), so the victim cannot finish before
    // its worker is killed however slow the machine; the go-ahead comes right after the kill.
    const go = join(home, 'go');
    const rows = [1, 2, 3, 4].map(
      (i) => `echo run >> ${runs}/t${i}; for w in $(seq 300); do [ -e ${go} ] && break; sleep 0.1; done; echo n > results.csv; echo ${i} >> results.csv`,
    );
    const f = jobFile(home, rows);
    const sub = await gq(['submit', f, '--code', code, '--name', 'kill-job', '--workers', '2', '--visibility', '3s', '--json'], env);
    expect(sub.code).toBe(0);
    // Wait until a task runs, then kill its worker outright.
    const victim = await waitFor('a running task', async () => {
      const s = await statusJson('kill-job', env);
      return s.running[0];
    });
    const inst = (await statusJson('kill-job', env)).instances.find((i: any) => i.instance === victim.instance);
    expect(inst).toBeDefined();
    const workerPids = pidsMatching(`--instance ${victim.instance}`);
    expect(workerPids.length).toBeGreaterThan(0);
    for (const p of workerPids) process.kill(p, 'SIGKILL');
    writeFileSync(go, '');
    const done = await waitFor(
      'the job to finish',
      async () => {
        const s = await statusJson('kill-job', env, true); // status also restores workers when none are left
        return s.counts.queued + s.counts.running === 0 ? s : undefined;
      },
      45_000,
      500,
    );
    expect(done.counts).toEqual({ queued: 0, running: 0, succeeded: 4, failed: 0, cancelled: 0 });
    const again = done.tasks.find((t: any) => t.task === victim.task);
    expect(again.attempts).toBe(2);
    expect(readFileSync(join(runs, `t${victim.task}`), 'utf8').trim().split('\n')).toHaveLength(2);
    const out = join(home, 'out');
    expect((await gq(['results', 'kill-job', '--out', out], env)).code).toBe(0);
    const merged = parse(readFileSync(join(out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(merged.map((r) => r.n)).toEqual(['1', '2', '3', '4']); // each result exactly once
  });

  it('cancels: queued tasks never start, running ones are stopped, counts stay true', async () => {
    const { env, home, code } = setup('cancel');
    const f = jobFile(home, Array.from({ length: 6 }, () => 'sleep 30'));
    expect((await gq(['submit', f, '--code', code, '--name', 'cancel-job', '--workers', '2', '--visibility', '3s'], env)).code).toBe(0);
    await waitFor('two running tasks', async () => (await statusJson('cancel-job', env)).counts.running === 2);
    const c = await gq(['cancel', 'cancel-job', '--json'], env);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ cancelled: 4, stopping: 2 });
    const s = await waitFor('running tasks to stop', async () => {
      const x = await statusJson('cancel-job', env, true);
      return x.counts.running === 0 ? x : undefined;
    }, 20_000);
    expect(s.counts).toEqual({ queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 6 });
    expect(s.tasks.every((t: any) => t.state === 'CANCELLED')).toBe(true);
  });

  it('retry --failed reruns only the failed tasks', async () => {
    const { env, home, code } = setup('retry-failed');
    const flag = join(home, 'fixed');
    const runs = join(home, 'runs');
    mkdirSync(runs);
    const f = jobFile(home, [
      `echo run >> ${runs}/t1; echo ok > results.csv`,
      `echo run >> ${runs}/t2; test -e ${flag} && echo ok > results.csv`,
      `echo run >> ${runs}/t3; echo ok > results.csv`,
    ]);
    expect((await gq(['submit', f, '--code', code, '--name', 'rf-job', '--retries', '0', '--workers', '2', '--wait'], env)).code).toBe(1);
    writeFileSync(flag, '');
    const r = await gq(['retry', 'rf-job', '--failed', '--wait', '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).counts).toMatchObject({ succeeded: 3, failed: 0 });
    expect(readdirSync(runs).sort()).toEqual(['t1', 't2', 't3']);
    expect(readFileSync(join(runs, 't1'), 'utf8')).toBe('run\n');
    expect(readFileSync(join(runs, 't2'), 'utf8')).toBe('run\nrun\n');
  });

  it('records an install failure, consumes no task and says why', async () => {
    const { env, home, code } = setup('install-fail');
    const install = join(home, 'INSTALL.sh');
    writeFileSync(install, 'echo "cannot find julia" >&2\nexit 4\n');
    const f = jobFile(home, ['echo ok > results.csv', 'echo ok > results.csv']);
    const r = await gq(['submit', f, '--code', code, '--install', install, '--install-retries', '1', '--name', 'inst-job', '--workers', '2', '--wait'], env, { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/install script failed on every worker/);
    const s = await waitFor('workers to record the failure', async () => {
      const x = await statusJson('inst-job', env);
      return x.instances.length === 2 && x.instances.every((i: any) => i.state === 'INSTALL_FAILED') ? x : undefined;
    });
    expect(s.counts).toMatchObject({ queued: 2, running: 0, succeeded: 0 });
    expect(s.instances[0].detail).toMatch(/exited with code 4.*cannot find julia.*after 2 attempts/);
    const log = await gq(['logs', 'inst-job', '--instance', s.instances[0].instance], env);
    expect(log.stdout).toContain('install attempt 2 of 2');
  });

  it('rejects a bad job file with every problem and creates nothing', async () => {
    const { env, home, code } = setup('bad-file');
    const f = join(home, 'bad.csv');
    writeFileSync(f, 'instance_type,command\nt3.small,echo ok\nt3.small,\nT3.Small,echo x\n');
    const r = await gq(['submit', f, '--code', code], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.csv:3/);
    expect(r.stderr).toMatch(/bad\.csv:4/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(existsSync(join(home, 'gq'))).toBe(false);
    void ROOT;
  });
});
