/**
 * "Prove that nothing is lost" on AWS (moto + the instance runtime running the real agent
 * bundle): install scripts that fail or hang every time. Bounded retries, the failure recorded
 * with its install log, the instances leave (terminated, group back to 0), no task consumed,
 * `gq status` says why and `gq submit --wait` stops with a clear error. (The same on the local
 * backend is in faults-local.test.ts.)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { awsInvariants, awsScenario, emulateEc2PowerOff, fleetGone, jobFile, runsOf, submit, task, TYPE } from './support/aws-faults.js';
import { gq, statusJson } from './support/cli.js';
import { describeAws } from './support/moto.js';

/** The two scripts' jobs (their own groups and instances) run side by side. */
const slowConcurrent = process.env.GQ_QUICK ? it.skip : it.concurrent;

describeAws('AWS backend on moto: install scripts that fail or hang', () => {
  let h: AwsHarness;
  let stopPowerOff: () => void = () => undefined;

  beforeAll(async () => {
    h = (await startAwsHarness('faults-install', { jobPrefix: 'fi-' }))!;
    stopPowerOff = emulateEc2PowerOff(h);
  }, 180_000);

  afterAll(async () => {
    stopPowerOff();
    await h?.stop();
  });

  for (const kind of ['fails', 'hangs'] as const) {
    slowConcurrent(`an install script that ${kind} every time: bounded, recorded, instances leave, no task consumed, --wait stops`, async () => {
      const s = awsScenario(h, `fi-${kind}`, 'every-task');
      const install = join(s.dir, 'INSTALL.sh');
      writeFileSync(
        install,
        kind === 'fails'
          ? `echo "attempt at $(date +%s)" >> ${s.runs}/install\necho "cannot find julia" >&2\nexit 4\n`
          : // Ignores SIGTERM too: only the KILL after the grace period ends it.
            `echo "attempt at $(date +%s)" >> ${s.runs}/install\ntrap '' TERM\necho hanging\nsleep 600\n`,
      );
      const f = jobFile(s, [task(s, 1), task(s, 2)]);
      const t0 = Date.now();
      const r = await submit(s, f, ['--install', install, '--install-retries', '1', '--install-timeout', '2s', '--wait']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/install script failed on every worker/);
      expect(r.stderr).toMatch(kind === 'fails' ? /exited with code 4.*cannot find julia/ : /timed out after 2s/);
      expect(Date.now() - t0).toBeLessThan(100_000);

      // The instances left by themselves: terminated, the group back to 0.
      await fleetGone(s);
      const st = await statusJson(s.job, h.env, true);
      expect(st.instances).toHaveLength(2);
      for (const i of st.instances) {
        expect(i.state).toBe('INSTALL_FAILED');
        expect(i.detail).toMatch(/after 2 attempts/);
      }
      // Bounded: two attempts on each instance.
      expect(readFileSync(join(s.runs, 'install'), 'utf8').trim().split('\n')).toHaveLength(4);
      // No task consumed: both queued, never attempted, their messages still in the queue.
      expect(st.counts).toMatchObject({ queued: 2, running: 0, succeeded: 0, failed: 0 });
      expect(st.tasks.map((t: any) => t.attempts)).toEqual([0, 0]);
      expect(runsOf(s, 1)).toEqual([]);
      const depth = await (await h.backend.queues.open(s.job, TYPE)).depth();
      expect(depth.visible + depth.inFlight).toBe(2);
      // gq status says why, and does not start instances again for an install that can only fail.
      const text = await gq(['status', s.job], h.env);
      expect(text.stdout).toMatch(/Install failed on i-\w+ .*after 2 attempts/);
      expect(text.stdout).toMatch(/gq logs .* --instance i-/);
      const groups = await h.backend.fleet.describe(s.job);
      expect(groups.map((g) => g.desired)).toEqual([0]);
      const log = await gq(['logs', s.job, '--instance', st.instances[0].instance], h.env);
      expect(log.code, log.stderr).toBe(0);
      expect(log.stdout).toContain('install attempt 2 of 2');
      expect(log.stdout).toMatch(kind === 'fails' ? /cannot find julia/ : /hanging[\s\S]*install timed out after 2s/);
      await awsInvariants(s, ['QUEUED']);
    }, 150_000);
  }
});
