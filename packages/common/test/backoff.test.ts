/** retryWithBackoff: bounded, only for the errors it is told to retry. */
import { describe, expect, it } from 'vitest';
import { backoffDelay, retryWithBackoff } from '../src/backoff.js';
import { explainRefusedGroup, isProfileNotYetVisible, isTemplateNotYetVisible } from '../src/aws/fleet-health.js';
import { UserError } from '../src/errors.js';

const err = (name: string, message: string) => Object.assign(new Error(message), { name });

describe('retryWithBackoff', () => {
  it('retries a retryable error until it succeeds', async () => {
    const waits: number[] = [];
    let n = 0;
    const out = await retryWithBackoff(async () => (++n < 3 ? Promise.reject(err('X', 'not yet')) : 'ok'), () => true, {
      sleep: async (ms) => void waits.push(ms),
    });
    expect(out).toBe('ok');
    expect(n).toBe(3);
    expect(waits).toHaveLength(2);
  });

  it('stops after `tries` and throws the last error; never retries other errors', async () => {
    let n = 0;
    await expect(retryWithBackoff(async () => Promise.reject(err('X', `try ${++n}`)), () => true, { tries: 4, sleep: async () => {} })).rejects.toThrow('try 4');
    n = 0;
    await expect(retryWithBackoff(async () => Promise.reject(err('Y', `try ${++n}`)), (e) => (e as Error).name === 'X', { sleep: async () => {} })).rejects.toThrow('try 1');
  });

  it('doubles its pause up to the cap, jittered to 50-100 %', () => {
    expect(backoffDelay(1, 1000, 8000, () => 1)).toBe(1000);
    expect(backoffDelay(3, 1000, 8000, () => 1)).toBe(4000);
    expect(backoffDelay(9, 1000, 8000, () => 1)).toBe(8000);
    expect(backoffDelay(2, 1000, 8000, () => 0)).toBe(1000);
  });
});

describe('eventual-consistency errors', () => {
  it('a launch template that Auto Scaling does not see yet', () => {
    expect(isTemplateNotYetVisible(err('ValidationError', 'The specified launch template, with template name gq-j-t3.micro, does not exist.'))).toBe(true);
    expect(isTemplateNotYetVisible(err('ValidationError', 'Max bound, 3, must be greater than or equal to min bound, 4'))).toBe(false);
    expect(isTemplateNotYetVisible(err('AccessDenied', 'launch template does not exist'))).toBe(false);
  });

  it('an instance profile that EC2 does not see yet', () => {
    const m = 'You must use a valid fully-formed launch template. Value (gq-profile) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name';
    expect(isProfileNotYetVisible(err('ValidationError', m))).toBe(true);
    expect(isProfileNotYetVisible(err('InvalidParameterValue', 'Invalid IamInstanceProfile: arn:aws:iam::1:instance-profile/x'))).toBe(true);
    expect(isProfileNotYetVisible(err('ValidationError', 'You must use a valid fully-formed launch template. The architecture ...'))).toBe(false);
  });
});

describe('explainRefusedGroup', () => {
  it('turns a CreateAutoScalingGroup ValidationError of a known cause into a UserError with advice', () => {
    const m =
      "You must use a valid fully-formed launch template. The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI.";
    const e = explainRefusedGroup(err('ValidationError', m), 'm7g.large');
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe(`AWS refused the Auto Scaling group for m7g.large: ${m}`);
    expect((e as UserError).hint).toMatch(/architecture/);
  });

  it('leaves anything else as it is', () => {
    const other = err('ValidationError', 'Max bound, 3, must be greater than or equal to min bound, 4');
    expect(explainRefusedGroup(other, 't3.micro')).toBe(other);
    const denied = err('AccessDenied', 'In order to use this AWS Marketplace product you need to accept terms and subscribe.');
    expect(explainRefusedGroup(denied, 't3.micro')).toBe(denied);
  });
});
