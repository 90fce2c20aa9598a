/** visibilityLeft: an extend stays within the 12 hours SQS counts from the receive. */
import { describe, expect, it } from 'vitest';
import { SQS_MAX_VISIBILITY_SECONDS, visibilityLeft } from '../../src/aws/task-queue-common.js';

const H = 3_600_000;

describe('visibilityLeft', () => {
  it('asks for what the caller wants while the 12 hours are far', () => {
    expect(visibilityLeft(0, 1_000, 300)).toBe(300);
    expect(visibilityLeft(0, 0, 50_000)).toBe(SQS_MAX_VISIBILITY_SECONDS - 1); // never above 12 h, and a second short of it
  });

  it('shortens an extend to what is left of the 12 hours since the receive', () => {
    // 11 h 59 min after the receive: 60 s left, one kept as margin.
    expect(visibilityLeft(0, 12 * H - 60_000, 300)).toBe(59);
    // A fraction of a second counts as a whole one (the receive time is taken before the call).
    expect(visibilityLeft(0, 12 * H - 60_500, 300)).toBe(59);
  });

  it('has nothing to extend once the 12 hours are spent, but a release to visible now is always allowed', () => {
    expect(visibilityLeft(0, 12 * H - 1_000, 300)).toBeUndefined();
    expect(visibilityLeft(0, 13 * H, 300)).toBeUndefined();
    expect(visibilityLeft(0, 13 * H, 0)).toBe(0);
  });
});
