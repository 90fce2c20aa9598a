/** The one edit distance of gq, and the "did you mean" lookups built on it. */
import { describe, expect, it } from 'vitest';
import { suggestSetting } from '../src/config/load.js';
import { closest, editDistance } from '../src/edit-distance.js';
import { suggestInstanceType } from '../src/job/jobfile/index.js';

describe('editDistance', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('abc', 'abc')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('smal', 'small')).toBe(1);
    expect(editDistance('xlarge', 'xlrage')).toBe(2);
  });

  it('is symmetric', () => {
    for (const [a, b] of [['micro', 'mciro'], ['local', 'lcoal'], ['retries', 'retry']] as const) {
      expect(editDistance(a, b)).toBe(editDistance(b, a));
    }
  });
});

describe('closest', () => {
  it('gives the nearest candidate under the bound, the first on a tie', () => {
    expect(closest('smal', ['nano', 'small', 'medium'], 3)).toBe('small');
    expect(closest('abc', ['abd', 'abe'], 3)).toBe('abd');
    expect(closest('zzzzzz', ['nano', 'small'], 3)).toBeUndefined();
    expect(closest('ab', ['abc'], 1)).toBeUndefined();
  });

  it('compares normalised forms and returns the candidate as given', () => {
    const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
    expect(closest('MAX-INSTANCE', ['maxInstances', 'retries'], 3, norm)).toBe('maxInstances');
  });

  it('serves both "did you mean" hints', () => {
    expect(suggestSetting('retrys')).toBe('retries');
    expect(suggestSetting('maxInstance')).toBe('maxInstances');
    expect(suggestInstanceType('t3.smal')).toBe('t3.small');
    expect(suggestInstanceType('lcal')).toBe('local');
  });
});
