/**
 * The browser test never skips quietly (as harness-skips.test.ts checks for the AWS tests):
 * without Chromium a run prints one SKIPPED line for the file, and with GQ_REQUIRE_AWS_TESTS=1
 * (CI) it fails and says how to get Chromium. Runs vitest itself on test/report-browser.test.ts
 * with GQ_CHROMIUM naming no executable (no job is run: the suite is skipped or fails at once).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FILE = 'test/report-browser.test.ts';

function vitestWithoutChromium(extra: Record<string, string> = {}): { status: number | null; out: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, GQ_CHROMIUM: '/nonexistent/chromium' };
  delete env.GQ_TEST_ROOT;
  delete env.GQ_REQUIRE_AWS_TESTS; // CI sets it for this run; each case says its own
  Object.assign(env, extra);
  const r = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', FILE], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('the browser test without Chromium', () => {
  it('a developer run passes and prints one SKIPPED line for the file, with how to get Chromium', () => {
    const r = vitestWithoutChromium();
    expect(r.status, r.out).toBe(0);
    expect(r.out.split('\n').filter((l) => l.startsWith('SKIPPED '))).toEqual([`SKIPPED ${FILE}: 2 browser tests (no Chromium)`]);
    expect(r.out).toContain('apt-get install chromium');
  });

  it('with GQ_REQUIRE_AWS_TESTS=1 (as .ci/run sets it) the run fails and says why', () => {
    const r = vitestWithoutChromium({ GQ_REQUIRE_AWS_TESTS: '1' });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('GQ_REQUIRE_AWS_TESTS=1 but no Chromium was found');
  });
});
