/**
 * gq results with provenance on the local backend, through the real CLI and worker processes:
 * tasks.csv, --with-provenance, the renaming and problem reports of the merge, and --failed with
 * its job file submitted again (test/support/results-scenario.ts; results-aws.test.ts the same on moto).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gq, gqEnv, testHome } from './support/cli.js';
import { checkFailed, checkResults, expectWorkersGone, resultsScenario } from './support/results-scenario.js';

const homes: string[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) await expectWorkersGone(h);
});

describe('gq results with provenance, local backend', () => {
  it('writes tasks.csv and the provenance columns, reports bad results files, and --failed gives a job file that runs again', async () => {
    const home = testHome('results-prov');
    homes.push(home);
    const env = gqEnv(home);
    const s = resultsScenario(home, 'prov-local', 'local');
    const run = (file: string, name: string) =>
      gq(['submit', file, '--code', s.code, '--name', name, '--retries', '1', '--workers', '2', '--wait', '--json'], env, { timeoutMs: 90_000 });
    const sub = await run(s.file, s.job);
    expect(sub.code, sub.stderr).toBe(1); // two tasks failed
    await checkResults(s, env);
    await checkFailed(s, env, run);
  }, 180_000);
});
