/**
 * gq results with provenance on the AWS backend (moto, the instance runtime running the real agent
 * bundle from the real UserData): the same job and checks as results-local.test.ts
 * (test/support/results-scenario.ts) — tasks.csv, --with-provenance, the merge's renaming and
 * problem reports, --failed and its job file submitted again.
 */
import { chmodSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { gq, testHome } from './support/cli.js';
import { describeAws } from './support/moto.js';
import { checkFailed, checkResults, resultsScenario } from './support/results-scenario.js';

describeAws('gq results with provenance, AWS backend on moto', () => {
  let h: AwsHarness;

  beforeAll(async () => {
    h = (await startAwsHarness('results-aws', { jobPrefix: 'rp-' }))!;
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('writes tasks.csv and the provenance columns, reports bad results files, and --failed gives a job file that runs again', async () => {
    const dir = testHome('rp-aws');
    chmodSync(dir, 0o1777); // the tasks run as the instances' task user
    const s = resultsScenario(dir, 'rp-aws', 't3.micro');
    const run = (file: string, name: string) =>
      gq(['submit', file, '--code', s.code, '--name', name, '--retries', '1', '--wait', '--json'], h.env, { timeoutMs: 150_000 });
    const sub = await run(s.file, s.job);
    expect(sub.code, `${sub.stderr}\n${h.runtime.errors.join('\n')}`).toBe(1); // two tasks failed
    await checkResults(s, h.env);
    await checkFailed(s, h.env, run);
  }, 400_000);
});
