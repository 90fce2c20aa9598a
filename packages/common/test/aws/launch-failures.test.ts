/** Classification of failed launches from AWS's own messages (launch-failures.ts, pure). */
import { describe, expect, it } from 'vitest';
import { classifyLaunchFailure, countedFailures, launchProblemOf, TRANSIENT_PERSIST_MS, type ScalingActivity } from '../../src/aws/launch-failures.js';
import { LAUNCH_MESSAGES } from '../fixtures/launch-messages.js';

const T0 = Date.parse('2026-12-01T08:00:00Z');
const failed = (minutes: number, message: string): ScalingActivity => ({
  startTime: T0 + minutes * 60_000,
  statusCode: 'Failed',
  statusMessage: message,
  description: `Launching a new EC2 instance.  Status Reason: ${message}`,
});
const succeeded = (minutes: number): ScalingActivity => ({
  startTime: T0 + minutes * 60_000,
  statusCode: 'Successful',
  description: 'Launching a new EC2 instance: i-0123456789abcdef0',
});

describe('classifyLaunchFailure', () => {
  for (const m of LAUNCH_MESSAGES) {
    it(`${m.cause}: ${m.message.slice(0, 70)}...`, () => {
      const info = classifyLaunchFailure(m.message, { instanceType: 't3.micro' });
      expect(info.cause).toBe(m.cause);
      expect(info.advice.length).toBeGreaterThan(40);
      expect(info.transient).toBe(m.cause === 'instance-profile');
    });
  }

  it('quotes the Marketplace page that AWS names', () => {
    const m = LAUNCH_MESSAGES.find((x) => x.cause === 'marketplace-terms')!;
    expect(classifyLaunchFailure(m.message).advice).toContain('https://aws.amazon.com/marketplace/pp?sku=14onryp2ljrzlajty34nw8o2z');
  });

  it('names the instance type in the advice', () => {
    expect(classifyLaunchFailure('Max spot instance count exceeded.', { instanceType: 'c7g.large' }).advice).toContain('c7g.large');
  });
});

describe('launchProblemOf', () => {
  const vcpu = LAUNCH_MESSAGES.find((x) => x.cause === 'vcpu-quota')!.message;

  it('is undefined without failures, or when the newest launch succeeded', () => {
    expect(launchProblemOf([])).toBeUndefined();
    expect(launchProblemOf([succeeded(0)])).toBeUndefined();
    expect(launchProblemOf([failed(0, vcpu), failed(1, vcpu), succeeded(2)])).toBeUndefined();
  });

  it('counts the failed launches since the last successful one, any order, with the newest reason', () => {
    const spot = 'Max spot instance count exceeded. Launching EC2 instance failed.';
    const p = launchProblemOf([failed(5, spot), succeeded(1), failed(0, vcpu), failed(3, vcpu), failed(2, vcpu)], { instanceType: 'm5.large' })!;
    expect(p).toMatchObject({ cause: 'spot-quota', reason: 'Max spot instance count exceeded.', failedLaunches: 3, transient: false });
    expect(p.since).toBe(new Date(T0 + 2 * 60_000).toISOString());
    expect(p.advice).toContain('m5.large');
  });

  it('ignores activities that are not launches (terminations, in progress)', () => {
    const p = launchProblemOf([
      failed(1, vcpu),
      { startTime: T0 + 2 * 60_000, statusCode: 'Successful', description: 'Terminating EC2 instance: i-1' },
      { startTime: T0 + 3 * 60_000, statusCode: 'InProgress', description: 'Launching a new EC2 instance' },
    ])!;
    expect(p.failedLaunches).toBe(1);
  });

  it('falls back on the Description when StatusMessage is empty', () => {
    const p = launchProblemOf([{ startTime: T0, statusCode: 'Cancelled', description: 'Launching a new EC2 instance.  Status Reason: Something new. Launching EC2 instance failed.' }])!;
    expect(p).toMatchObject({ cause: 'other', reason: 'Something new.', failedLaunches: 1 });
  });
});

describe('countedFailures', () => {
  const profile = LAUNCH_MESSAGES.find((x) => x.cause === 'instance-profile')!.message;

  it('counts a transient cause only once it has persisted', () => {
    const p = launchProblemOf([failed(0, profile), failed(1, profile), failed(2, profile)])!;
    expect(p.transient).toBe(true);
    expect(countedFailures(p, T0 + 3 * 60_000)).toBe(0);
    expect(countedFailures(p, T0 + TRANSIENT_PERSIST_MS + 1)).toBe(3);
  });

  it('counts any other cause at once', () => {
    const p = launchProblemOf([failed(0, 'Max spot instance count exceeded.')])!;
    expect(countedFailures(p, T0)).toBe(1);
    expect(countedFailures(undefined)).toBe(0);
  });
});
