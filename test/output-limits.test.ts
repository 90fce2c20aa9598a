/**
 * Outputs a task cannot have on AWS, through the real CLI and agent (local backend: the same
 * agent code and the same key rules as S3): a file under an --output folder whose key would pass
 * S3's 1024 bytes fails its task at once and for good, with the reason, instead of an upload or a
 * status write that AWS refuses on every retry; the job's other tasks are not affected.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gq, gqEnv, killAll, pidsMatching, statusJson, testHome, waitFor } from './support/cli.js';

describe('task outputs within S3’s limits (local backend)', () => {
  const home = testHome('output-limits');
  const env = gqEnv(home);
  afterAll(() => {
    expect(killAll(home)).toBe(0);
  });

  it('a file whose key would pass 1024 bytes fails its task once, with the reason; the other task succeeds', async () => {
    const code = join(home, 'code');
    mkdirSync(code, { recursive: true });
    const deep = Array.from({ length: 5 }, () => 'd'.repeat(200)).join('/');
    writeFileSync(
      join(home, 'job.csv'),
      'instance_type,command\n' +
        `local,"echo n,v > results.csv; mkdir -p extra/${deep}; echo x > extra/${deep}/f.txt"\n` +
        'local,"echo n,v > results.csv; mkdir -p extra; echo y > extra/ok.txt"\n',
    );
    const r = await gq(['submit', join(home, 'job.csv'), '--code', code, '--name', 'limits', '--output', 'extra', '--workers', '1', '--wait'], env, {
      cwd: home,
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).not.toBe(0);
    const s = await statusJson('limits', env, true);
    const [t1, t2] = s.tasks;
    expect(t1).toMatchObject({ task: 1, state: 'FAILED', attempts: 1 });
    expect(t1.error).toMatch(/S3 allows 1024/);
    expect(t2).toMatchObject({ task: 2, state: 'SUCCEEDED' });
    await waitFor('workers to leave', async () => pidsMatching(home).length === 0, 15_000);
  }, 120_000);
});
