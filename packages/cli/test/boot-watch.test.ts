/** Boot-loop detection and giving up on launches (pure parts of boot-watch.ts and fleet-report.ts). */
import { describe, expect, it } from 'vitest';
import type { InstanceRecord, JobRecord, LaunchedInstance } from '@gq/common';
import { countedBootFailures, silentBootReason, silentBoots } from '../src/boot-watch.js';
import { giveUpReason, reportLines, typeFleetJson, type FleetReport } from '../src/fleet-report.js';

const NOW = Date.parse('2026-12-01T09:00:00Z');
const minAgo = (m: number) => new Date(NOW - m * 60_000).toISOString();
const inst = (id: string, state: string, launchedMinAgo: number, stateReason?: string): LaunchedInstance => ({
  id,
  instanceType: 't3.micro',
  launchedAt: minAgo(launchedMinAgo),
  state,
  ...(stateReason ? { stateReason } : {}),
});
const rec = (instance: string, state: InstanceRecord['state']): InstanceRecord => ({ job: 'j', instance, instanceType: 't3.micro', state, heartbeatAt: minAgo(1) });
const TIMEOUT = 15 * 60_000;

describe('silentBoots', () => {
  it('counts instances without a record that ended, or that are silent past the deadline', () => {
    const launched = [
      inst('i-reported', 'running', 30),
      inst('i-booting', 'running', 5),
      inst('i-silent', 'running', 16),
      inst('i-ended', 'terminated', 3, 'Client.InstanceInitiatedShutdown: Instance initiated shutdown'),
      inst('i-spot', 'terminated', 3, 'Server.SpotInstanceTermination: Spot instance termination'),
      inst('i-failed-reported', 'terminated', 4),
    ];
    const got = silentBoots(launched, [rec('i-reported', 'BUSY'), rec('i-failed-reported', 'BOOT_FAILED')], NOW, TIMEOUT);
    expect(got.map((s) => [s.instance.id, s.why])).toEqual([
      ['i-silent', 'timeout'],
      ['i-ended', 'ended'],
    ]);
  });

  it("ignores instances launched before the job was created (an earlier job's of the same name)", () => {
    const launched = [inst('i-old', 'terminated', 90), inst('i-new', 'terminated', 3)];
    expect(silentBoots(launched, [], NOW, TIMEOUT, minAgo(10)).map((s) => s.instance.id)).toEqual(['i-new']);
  });
});

describe('countedBootFailures', () => {
  const at = (r: InstanceRecord, minutes: number): InstanceRecord => ({ ...r, heartbeatAt: minAgo(minutes) });
  it('counts the failed boots since the type last had a working instance', () => {
    const records = [
      at(rec('i-flaky', 'BOOT_FAILED'), 50),
      at(rec('i-worked', 'STOPPED'), 40),
      at(rec('i-f1', 'BOOT_FAILED'), 30),
      at(rec('i-f2', 'BOOT_FAILED'), 20),
      at(rec('i-install', 'INSTALL_FAILED'), 10),
      { ...at(rec('i-other-type', 'BUSY'), 1), instanceType: 'c5.large' },
    ];
    expect(countedBootFailures(records, 't3.micro').map((r) => r.instance)).toEqual(['i-f1', 'i-f2']);
  });
  it('a worker alive now resets the count; nothing worked yet: all count', () => {
    expect(countedBootFailures([at(rec('i-f1', 'BOOT_FAILED'), 5), at(rec('i-busy', 'BUSY'), 0)], 't3.micro')).toEqual([]);
    expect(countedBootFailures([at(rec('i-f1', 'BOOT_FAILED'), 5), at(rec('i-f2', 'BOOT_FAILED'), 4)], 't3.micro')).toHaveLength(2);
  });
});

describe('silentBootReason', () => {
  const ended = { instance: inst('i-1', 'terminated', 3, 'Client.InstanceInitiatedShutdown: Instance initiated shutdown'), why: 'ended' as const };
  it("prefers the boot script's own 'boot failed' line from the console output", () => {
    const console = 'Cloud-init v. 22.2\n[gq-userdata 2026-12-01T08:59:00Z] boot failed: agent download failed: GET s3://b/k: HTTP 403\n[gq-userdata ...] powering off\n';
    expect(silentBootReason(ended, console, TIMEOUT)).toBe('boot failed: agent download failed: GET s3://b/k: HTTP 403');
  });
  it('else the last boot log line, else what EC2 says, else the deadline', () => {
    expect(silentBootReason(ended, '[gq-boot] GET s3://b/k failed (ECONNREFUSED); retry 3 in 4000 ms\n', TIMEOUT)).toBe(
      'ended without reporting to gq; last boot log line: GET s3://b/k failed (ECONNREFUSED); retry 3 in 4000 ms',
    );
    expect(silentBootReason({ instance: inst('i-2', 'terminated', 3, 'Client.InternalError: Client error on launch'), why: 'ended' }, undefined, TIMEOUT)).toBe(
      'ended without reporting to gq (EC2: Client.InternalError: Client error on launch)',
    );
    expect(silentBootReason(ended, undefined, TIMEOUT)).toBe('ended without reporting to gq');
    expect(silentBootReason({ instance: inst('i-3', 'running', 20), why: 'timeout' }, '', TIMEOUT)).toBe('no report within 15 minutes of its launch');
    expect(silentBootReason({ instance: inst('i-3', 'running', 20), why: 'timeout' }, '', 40_000)).toBe('no report within 40 seconds of its launch');
  });
});

describe('giveUpReason', () => {
  const job = { name: 'j', instanceTypes: { 't3.micro': 2 } } as unknown as JobRecord;
  const problem = (failedLaunches: number, transient = false, sinceMinAgo = 1) => ({
    cause: transient ? 'instance-profile' : 'vcpu-quota',
    reason: 'You have requested more vCPU capacity than your current vCPU limit of 32 allows',
    advice: 'Ask for more.',
    failedLaunches,
    since: minAgo(sinceMinAgo),
    transient,
  });
  const report = (t: Omit<FleetReport['types'][string], 'unhealthy'>): FleetReport => ({ groups: [], types: { 't3.micro': { unhealthy: 0, ...t } } });
  const limits = { launchFailures: 3, bootFailures: 3 };

  it('gives up after the configured number of failed launches, with AWS reason and advice', () => {
    expect(giveUpReason(job, report({ failedBoots: 0, stopped: false, launchProblem: problem(2) }), limits, NOW)).toBeUndefined();
    const e = giveUpReason(job, report({ failedBoots: 0, stopped: false, launchProblem: problem(3) }), limits, NOW)!;
    expect(e.message).toBe('Instances of t3.micro are not starting: You have requested more vCPU capacity than your current vCPU limit of 32 allows');
    expect(e.hint).toContain('Ask for more.');
  });

  it('waits out a transient cause until it persists', () => {
    expect(giveUpReason(job, report({ failedBoots: 0, stopped: false, launchProblem: problem(5, true, 2) }), limits, NOW)).toBeUndefined();
    expect(giveUpReason(job, report({ failedBoots: 0, stopped: false, launchProblem: problem(5, true, 11) }), limits, NOW)).toBeDefined();
  });

  it('gives up when a boot loop was stopped', () => {
    const e = giveUpReason(job, report({ failedBoots: 3, stopped: true, reason: 'no report within 15 minutes of its launch' }), limits, NOW)!;
    expect(e.message).toMatch(/3 failed boot\(s\); its group is set to 0/);
    expect(e.details).toEqual(['last: no report within 15 minutes of its launch']);
  });

  it('status lines and JSON carry the same fields', () => {
    const j = typeFleetJson({ failedBoots: 1, stopped: false, reason: 'r', launchProblem: problem(2), unhealthy: 1 }, { bootFailures: 3 });
    expect(j).toEqual({ launchProblem: problem(2), boot: { failed: 1, limit: 3, stopped: false, reason: 'r' }, unhealthyInstances: 1 });
    const lines = reportLines(j);
    expect(lines[0]).toBe('      not starting: You have requested more vCPU capacity than your current vCPU limit of 32 allows');
    expect(lines.join('\n')).toMatch(/what to do: Ask for more\./);
    expect(lines.join('\n')).toMatch(/1 failed boot\(s\) \(the group is set to 0 after 3\): r/);
    expect(lines[lines.length - 1]).toBe('      1 instance(s) unhealthy (Auto Scaling replaces them)');
    expect(typeFleetJson(undefined, { bootFailures: 3 })).toEqual({});
  });
});
