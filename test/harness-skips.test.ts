/**
 * The harness never skips AWS tests quietly: without moto a run prints one line per skipped file,
 * and with GQ_REQUIRE_AWS_TESTS=1 (CI) it fails instead of passing with the AWS tests skipped.
 * Runs vitest itself as a subprocess, on one small AWS test file, with moto_server off PATH.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FILE = 'packages/common/test/aws/artifact-store.test.ts';

function vitestWithoutMoto(extra: Record<string, string> = {}): { status: number | null; out: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // No moto of any kind: not on PATH, no endpoint, no decision inherited from this run.
  env.PATH = (env.PATH ?? '').split(':').filter((d) => !/pyenv|\.local\/bin|moto/.test(d)).join(':');
  delete env.AWS_ENDPOINT_URL;
  delete env.GQ_MOTO_SOURCE;
  delete env.GQ_TEST_ROOT;
  delete env.GQ_REQUIRE_AWS_TESTS; // CI sets it for this run; each case says its own
  Object.assign(env, extra);
  // Docker: point testcontainers at a socket that does not exist, whatever the machine has.
  env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
  const r = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', FILE], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('AWS tests without moto', () => {
  it('a developer run passes and prints one SKIPPED line for the file, with how to get moto', () => {
    const r = vitestWithoutMoto();
    expect(r.status, r.out).toBe(0);
    const lines = r.out.split('\n').filter((l) => l.startsWith('SKIPPED '));
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^SKIPPED ${FILE}: \\d+ AWS tests \\(no moto\\)$`))]);
    expect(r.out).toContain("pip install 'moto[server]'");
    expect(r.out).toContain('Docker engine');
  });

  it('with GQ_REQUIRE_AWS_TESTS=1 (as .ci/run sets it) the run fails and says why', () => {
    const r = vitestWithoutMoto({ GQ_REQUIRE_AWS_TESTS: '1' });
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('GQ_REQUIRE_AWS_TESTS=1 but no moto can be had');
  });
});

describe('every AWS test file skips through describeAws', () => {
  it('no test file decides describe vs describe.skip on moto itself, or warns on its own', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const files = [
      ...readdirSync(`${ROOT}/test`, { recursive: true }).map((f) => `test/${f}`),
      ...['common', 'agent', 'cli', 'strict-aws'].flatMap((p) => readdirSync(`${ROOT}/packages/${p}/test`, { recursive: true }).map((f) => `packages/${p}/test/${f}`)),
    ].filter((f) => f.endsWith('.ts') && !f.includes('/support/'));
    expect(files.length).toBeGreaterThan(30);
    const offenders: string[] = [];
    for (const f of files) {
      const text = readFileSync(`${ROOT}/${f}`, 'utf8');
      // A hand-made skip is silent when the file has no other tests (vitest never runs its hooks).
      if (/(?:motoAvailable\(\)|\bavailable|haveMoto|\bmoto)\s*\?\s*describe\s*:\s*describe\.skip|describe\.skipIf\(\s*!\s*\w*moto|warnSkipped\(/i.test(text)) offenders.push(f);
    }
    expect(offenders, 'use describeAws from test/support/moto.ts').toEqual([]);
  });
});
