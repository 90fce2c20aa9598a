/**
 * The `unreachableTimeout` setting (how long a worker stays while AWS is out of reach): flag,
 * environment and config file in that order, then 30 minutes; recorded in the job for its agents.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, UserError } from '@gq/common';
import { openLocalBackend } from '@gq/common/local/index';
import { gq, gqEnv, killAll, testHome } from '../../../test/support/cli.js';

function env(extra: Record<string, string> = {}, file?: object): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'gq-unreach-'));
  const config = join(dir, 'config.json');
  if (file) writeFileSync(config, JSON.stringify(file));
  return { GQ_CONFIG: config, ...extra };
}

describe('unreachableTimeout', () => {
  it('is 30 minutes by default; flag over environment over config file', () => {
    expect(loadConfig({}, env()).unreachableTimeout).toBe(1800);
    expect(loadConfig({}, env({}, { unreachableTimeout: '10m' })).unreachableTimeout).toBe(600);
    expect(loadConfig({}, env({ GQ_UNREACHABLE_TIMEOUT: '90s' }, { unreachableTimeout: '10m' })).unreachableTimeout).toBe(90);
    expect(loadConfig({ unreachableTimeout: '5' }, env({ GQ_UNREACHABLE_TIMEOUT: '90s' })).unreachableTimeout).toBe(5);
  });

  it('refuses a value that is not a duration of at least 1 s, naming the setting', () => {
    for (const bad of ['0', 'soon']) {
      let err: unknown;
      try {
        loadConfig({}, env({ GQ_UNREACHABLE_TIMEOUT: bad }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/unreachableTimeout|GQ_UNREACHABLE_TIMEOUT/);
    }
  });

  it('gq submit --unreachable-timeout records it in the job, for its agents', async () => {
    const home = testHome('unreach-submit');
    const e = gqEnv(home);
    const code = join(home, 'code');
    mkdirSync(code);
    writeFileSync(join(code, 'README'), 'x\n');
    writeFileSync(join(home, 'jobs.csv'), 'instance_type,command\nlocal,true\n');
    try {
      const r = await gq(['submit', join(home, 'jobs.csv'), '--code', code, '--name', 'unreach-j', '--workers', '1', '--unreachable-timeout', '45s', '--wait'], e);
      expect(r.code, r.stderr).toBe(0);
      const b = openLocalBackend({ home: e.GQ_HOME! });
      try {
        expect((await b.status.getJob('unreach-j'))!.unreachableSeconds).toBe(45);
      } finally {
        await b.close();
      }
    } finally {
      killAll(home);
    }
  });
});
