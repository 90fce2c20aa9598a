import { describe, expect, it } from 'vitest';
import { hideLeased } from '../src/loop.js';

const now = 1_000_000_000_000;

describe('hideLeased (a message delivered again while another worker holds its task)', () => {
  it('hides it until just after the holder\'s lease would expire, for a young task', () => {
    expect(hideLeased(now + 200_000, now - 60_000, 300, now)).toBe(500);
  });
  it('hides it for twice the run time once the task has run an hour', () => {
    expect(hideLeased(now + 200_000, now - 3 * 3600_000, 300, now)).toBe(6 * 3600);
  });
  it('never asks for more than SQS allows (12 hours) or less than a second', () => {
    expect(hideLeased(now + 200_000, now - 48 * 3600_000, 300, now)).toBe(43_200);
    expect(hideLeased(now - 10_000_000, undefined, 0, now)).toBe(1);
  });
});
