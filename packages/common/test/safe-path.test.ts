import { describe, expect, it } from 'vitest';
import { isInside, isPlainSegment, keyProblems, plainRelativeKey } from '../src/safe-path.js';

describe('path safety', () => {
  it('a plain segment is one file name, never "." or ".." or a path', () => {
    for (const ok of ['job-1', 'i-0abc', '.hidden', 'a..b']) expect(isPlainSegment(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', 'a\\b', 'a\0b']) expect(isPlainSegment(bad), JSON.stringify(bad)).toBe(false);
  });

  it('names every problem of a key, and a prefix may end in "/"', () => {
    expect([...keyProblems('jobs/x/tasks/1/log.txt')]).toEqual([]);
    expect([...keyProblems('/a/../b\\c\0')].sort()).toEqual(['absolute', 'backslash', 'dotdot-segment', 'empty-segment', 'nul']);
    expect([...keyProblems('C:x/./y')].sort()).toEqual(['dot-segment', 'drive-letter']);
    expect([...keyProblems('jobs/x/')]).toEqual(['empty-segment']);
    expect([...keyProblems('jobs/x/', { prefix: true })]).toEqual([]);
    expect(plainRelativeKey('a/b')).toBe('a/b');
    expect(plainRelativeKey('')).toBeUndefined();
  });

  it('inside means strictly below the folder', () => {
    expect(isInside('/r', '/r/a')).toBe(true);
    expect(isInside('/r', '/r')).toBe(false);
    expect(isInside('/r', '/ra')).toBe(false);
    expect(isInside('/r', '/r/../x')).toBe(false);
  });
});
