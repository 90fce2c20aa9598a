/**
 * The fault scenarios' invariant (support/invariants.ts) must notice a lost result: a finished
 * local job passes it, and fails it once one result object is gone, or once a SUCCEEDED task was
 * recorded without its result (a result lost in upload), which the old check let through.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, openLocalBackend, type LocalBackend } from '../packages/common/src/local/index.js';
import { gq, gqEnv, killAll, testHome } from './support/cli.js';
import { checkInvariants, type ResultsDeclared } from './support/invariants.js';

describe('checkInvariants notices a lost result', () => {
  const home = testHome('invariants');
  const env = gqEnv(home);
  let backend: LocalBackend;
  let n = 0;

  /** A finished job of three tasks, each writing a one-row results file. */
  async function finishedJob(job: string): Promise<void> {
    const code = join(home, 'code');
    mkdirSync(code, { recursive: true });
    writeFileSync(join(code, 'README'), 'x\n');
    const rows = [1, 2, 3].map((i) => `local,"printf 'id\\n${i}\\n' > results.csv"`);
    writeFileSync(join(home, 'jobs.csv'), ['instance_type,command', ...rows].join('\n') + '\n');
    const r = await gq(['submit', join(home, 'jobs.csv'), '--code', code, '--name', job, '--workers', '1', '--wait'], env, { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
  }

  beforeAll(async () => {
    for (const j of ['inv-ok', 'inv-nokey', 'inv-noobj']) await finishedJob(j);
    backend = openLocalBackend({ home: env.GQ_HOME! });
  });

  afterAll(async () => {
    await backend?.close();
    killAll(home);
  });

  const check = (job: string, results: ResultsDeclared) =>
    checkInvariants({ status: backend.status, artifacts: backend.artifacts, job, env, out: join(home, `out-${++n}`), results, idColumn: 'id' });

  it('passes on a job whose every result is there', async () => {
    await check('inv-ok', 'every-task');
    await check('inv-ok', 'some-tasks');
  });

  it('fails a SUCCEEDED task recorded without its result key (lost in upload), where every task writes results', async () => {
    const job = 'inv-nokey';
    const t2 = (await backend.status.getTask(job, 2))!;
    expect(t2.state).toBe('SUCCEEDED');
    // What a lost upload leaves: the task SUCCEEDED, no result key, no object.
    rmSync(join(backend.artifacts.root, ...t2.resultKey!.split('/')));
    const db = openDb(env.GQ_HOME!);
    try {
      db.prepare("UPDATE tasks SET record = json_remove(record, '$.resultKey') WHERE job = ? AND task = 2").run(job);
    } finally {
      db.close();
    }
    expect((await backend.status.getTask(job, 2))!.resultKey).toBeUndefined();
    await expect(check(job, 'every-task')).rejects.toThrow(/SUCCEEDED task 2 has no result key/);
    // The old check (a SUCCEEDED task without a key was left out) passes it: what the new one closes.
    await check(job, 'some-tasks');
  });

  it('fails when a recorded result object is missing from the store', async () => {
    const job = 'inv-noobj';
    const t3 = (await backend.status.getTask(job, 3))!;
    rmSync(join(backend.artifacts.root, ...t3.resultKey!.split('/')));
    await expect(check(job, 'every-task')).rejects.toThrow(/result of task 3 .* is missing/);
    await expect(check(job, 'some-tasks')).rejects.toThrow(/result of task 3 .* is missing/);
  });

  it('refuses a call that does not say what the tasks write', async () => {
    await expect(check('inv-ok', undefined as unknown as ResultsDeclared)).rejects.toThrow(/say what the tasks write/);
  });
});
