/**
 * The `spotInterruptions` setting (after how many interruptions of one task its next attempt runs
 * on on-demand): flag, environment and config file in that order, then 3; bad values refused
 * naming the setting; not recorded for a job that does not run on Spot.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, UserError } from '@gq/common';
import { openLocalBackend } from '@gq/common/local/index';
import { gq, gqEnv, killAll, testHome } from '../../../test/support/cli.js';
import { planLines, type JobPlan } from '../src/commands/dry-run.js';

function env(extra: Record<string, string> = {}, file?: object): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'gq-spotint-'));
  const config = join(dir, 'config.json');
  if (file) writeFileSync(config, JSON.stringify(file));
  return { GQ_CONFIG: config, ...extra };
}

describe('spotInterruptions', () => {
  it('is 3 by default; flag over environment over config file; 0 allowed (never fall back)', () => {
    expect(loadConfig({}, env()).spotInterruptions).toBe(3);
    expect(loadConfig({}, env({}, { spotInterruptions: 5 })).spotInterruptions).toBe(5);
    expect(loadConfig({}, env({ GQ_SPOT_INTERRUPTIONS: '0' }, { spotInterruptions: 5 })).spotInterruptions).toBe(0);
    expect(loadConfig({ spotInterruptions: 2 }, env({ GQ_SPOT_INTERRUPTIONS: '0' })).spotInterruptions).toBe(2);
  });

  it('refuses a value that is not a whole number from 0 to 100, naming the setting', () => {
    for (const bad of ['-1', '1.5', 'many', '101']) {
      expect(() => loadConfig({}, env({ GQ_SPOT_INTERRUPTIONS: bad })), bad).toThrow(UserError);
      expect(() => loadConfig({}, env({ GQ_SPOT_INTERRUPTIONS: bad })), bad).toThrow(/spotInterruptions|GQ_SPOT_INTERRUPTIONS/);
    }
  });

  it('is not recorded for a job without Spot (a local one): it never falls back', async () => {
    const home = testHome('spotint-submit');
    const e = gqEnv(home);
    const code = join(home, 'code');
    mkdirSync(code);
    writeFileSync(join(code, 'README'), 'x\n');
    writeFileSync(join(home, 'jobs.csv'), 'instance_type,command\nlocal,true\n');
    const args = ['submit', join(home, 'jobs.csv'), '--code', code, '--name', 'spotint-j', '--workers', '1', '--spot-interruptions', '2', '--wait'];
    const r = await gq(args, e).finally(() => killAll(home));
    expect(r.code, r.stderr).toBe(0);
    const b = openLocalBackend({ home: e.GQ_HOME! });
    const job = await b.status.getJob('spotint-j').finally(() => b.close());
    expect(job?.spotInterruptions).toBeUndefined();
    expect(job?.counts.succeeded).toBe(1);
  });

  it('gq submit --dry-run says when a job falls back to on-demand', () => {
    const plan: JobPlan = { name: 'p', backend: 'aws', total: 1, types: [], estimate: null, runtimeFrom: null };
    expect(planLines({ ...plan, spotInterruptions: 2 }, undefined).join('\n')).toMatch(/On-demand fallback: after 2 Spot interruptions/);
    expect(planLines(plan, undefined).join('\n')).not.toMatch(/On-demand fallback/);
  });
});
