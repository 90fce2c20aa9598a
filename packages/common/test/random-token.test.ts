import { describe, expect, it } from 'vitest';
import { randomToken } from '../src/random-token.js';

describe('randomToken', () => {
  it('gives tokens of the asked size and alphabet, all different, across many refills of its pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const hex = randomToken(12, 'hex');
      const b64 = randomToken(12, 'base64url');
      expect(hex).toMatch(/^[0-9a-f]{24}$/);
      expect(b64).toMatch(/^[A-Za-z0-9_-]{16}$/);
      seen.add(hex).add(b64);
    }
    expect(seen.size).toBe(10_000); // 5,000 × 24 bytes: about 30 refills of the 4 KiB pool
    expect(randomToken(5000, 'hex')).toHaveLength(10_000); // larger than the pool
  });
});
