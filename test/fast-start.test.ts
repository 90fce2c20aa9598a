/**
 * The start-up bundles (scripts/fast-start.mjs): `gq` and `gq-agent` start from
 * dist-start/ when it is newer than the last tsc build of its packages, and from dist/ when it
 * is not (a `tsc -b` without the bundle step never runs stale code) or GQ_NO_BUNDLE=1.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GQ, GQ_AGENT, ROOT, testHome } from './support/cli.js';

const home = testHome('fast-start');
const hook = join(home, 'hook.mjs');
const seen = join(home, 'loaded.txt');
writeFileSync(
  hook,
  `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function load(url, ctx, next) { appendFileSync(${JSON.stringify(seen)}, url + '\\\\n'); return next(url, ctx); }
\`));
`,
);

/** What a command printed, and the ES modules it loaded (every URL; `modules`: gq's, relative to packages/). */
function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  writeFileSync(seen, '');
  const r = spawnSync(process.execPath, ['--import', hook, bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home, ...env } });
  const urls = readFileSync(seen, 'utf8').split('\n').filter(Boolean);
  return { r, urls, modules: urls.filter((u) => u.includes('/packages/')).map((u) => u.replace(/.*\/packages\//, '')) };
}

/** The gq modules a command loaded, relative to packages/ (it must succeed). */
function loaded(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): { out: string; modules: string[] } {
  const { r, modules } = run(bin, args, env);
  expect(r.status, r.stderr).toBe(0);
  return { out: r.stdout, modules };
}

describe('start-up bundles', () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'packages', 'cli', 'package.json'), 'utf8')) as { version: string }).version;

  it('gq starts from its bundle: a few files, the same answers', () => {
    const r = loaded(GQ, ['--version']);
    expect(r.out.trim()).toBe(version);
    expect(r.modules).toContain('cli/dist-start/cli.js');
    expect(r.modules.filter((m) => m.includes('/dist/'))).toEqual(['common/dist/start-entry.js']);
    expect(r.modules.length).toBeLessThan(13); // bin, start-entry, the bundle's entry and its start chunks
    const plain = loaded(GQ, ['--version'], { GQ_NO_BUNDLE: '1' });
    expect(plain.out).toBe(r.out);
    expect(plain.modules).toContain('cli/dist/cli.js');
    expect(plain.modules.length).toBeGreaterThan(40);
  });

  it('gq-agent starts from its bundle', () => {
    const r = loaded(GQ_AGENT, ['--help']);
    expect(r.out).toContain('gq-agent run');
    expect(r.modules).toContain('agent/dist-start/cli.js');
    expect(r.modules.filter((m) => m.includes('/dist/'))).toEqual(['common/dist/start-entry.js']);
  });

  it('the AWS SDK is loaded with require(), not as ES modules; AWS out of reach is said plainly', () => {
    // A command on the AWS backend whose endpoint answers nothing: it loads the SDK, tries, fails.
    const config = join(home, 'aws.json');
    writeFileSync(config, JSON.stringify({ backend: 'aws', region: 'us-east-1' }));
    const env = { GQ_CONFIG: config, AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_MAX_ATTEMPTS: '1' };
    const { r, urls, modules } = run(GQ, ['status', 'some-job'], env);
    expect(modules).toContain('cli/dist-start/cli.js');
    // An ES import of these CommonJS packages parsed each file twice more (format detection, export lexer).
    expect(urls.filter((u) => /node_modules\/@(aws-sdk|smithy)\//.test(u))).toEqual([]);
    expect(r.stderr).toMatch(/^gq: Cannot reach AWS at 127\.0\.0\.1:9 \(ECONNREFUSED\), even after retries\./m);
    expect(r.stderr).toMatch(/hint: AWS_ENDPOINT_URL is set \(http:\/\/127\.0\.0\.1:9\)/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(1);
  });

  for (const pkg of ['common', 'agent']) {
    it(`a bundle older than the last tsc build of a package in it (${pkg}) is not used`, () => {
      const info = join(ROOT, 'packages', pkg, 'tsconfig.tsbuildinfo');
      const was = statSync(info);
      try {
        const later = new Date(statSync(join(ROOT, 'packages', 'cli', 'dist-start', 'cli.js')).mtimeMs + 60_000);
        utimesSync(info, later, later);
        expect(loaded(GQ, ['--version']).modules).toContain('cli/dist/cli.js');
        expect(loaded(GQ_AGENT, ['--help']).modules).toContain('agent/dist/cli.js');
      } finally {
        utimesSync(info, was.atime, was.mtime);
      }
      expect(loaded(GQ, ['--version']).modules).toContain('cli/dist-start/cli.js');
    });
  }
});
