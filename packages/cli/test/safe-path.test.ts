import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pathUnder, safeRelative } from '../src/results/safe-path.js';
import { checkKeyRoom, MAX_KEY_BYTES, parseInput, relativeInside } from '../src/paths.js';

describe('download paths', () => {
  it.each(['../x', 'a/../../x', '/etc/passwd', 'a\\b', 'C:/x', 'a//b', './a', 'a\0b', ''])('refuses %j', (rel) => {
    expect(safeRelative(rel)).toBeUndefined();
    expect(() => pathUnder('/tmp/out', rel)).toThrow(/Refusing/);
  });
  it('accepts plain relative paths', () => {
    expect(pathUnder('/tmp/out', 'tasks/1/results.csv')).toBe('/tmp/out/tasks/1/results.csv');
  });
  it('refuses to write through a symlink in the output folder', () => {
    const root = mkdtempSync(join(tmpdir(), 'gq-safe-'));
    mkdirSync(join(root, 'tasks'));
    symlinkSync('/tmp', join(root, 'tasks', '1'));
    expect(() => pathUnder(root, 'tasks/1/results.csv')).toThrow(/symbolic link/);
  });
});

describe('submit paths', () => {
  it.each([
    ['/abs/results.csv', /absolute/],
    ['../results.csv', /outside the code folder/],
    ['a/../../b', /outside the code folder/],
    ['', /empty/],
  ])('refuses results path %j', (p, msg) => {
    expect(() => relativeInside('Results path', '--results', p)).toThrow(msg);
  });
  it('normalises a good path', () => {
    expect(relativeInside('Results path', '--results', './out//r.csv')).toBe('out/r.csv');
  });
  it('checks --input', () => {
    expect(() => parseInput('nothing-here=data')).toThrow(/does not exist/);
    expect(() => parseInput('.=../data')).toThrow(/outside the code folder/);
    expect(() => parseInput('no-equals')).toThrow(/LOCAL=REMOTE/);
    expect(parseInput('.=data')).toMatchObject({ remote: 'data' });
  });
});

describe('object key room (S3 keys are at most 1024 bytes of UTF-8)', () => {
  const job = 'j'.repeat(40);
  // jobs/<40>/tasks/100000/files/ is 65 bytes: 959 are left for the path.
  it('refuses a results or output path that would make a task key too long, naming the flag and the room left', () => {
    let err: (Error & { hint?: string }) | undefined;
    try {
      checkKeyRoom(job, 100_000, [{ flag: '--output', path: 'é'.repeat(480) }]);
    } catch (e) {
      err = e as Error & { hint?: string };
    }
    expect(err?.message).toMatch(/--output is too long.*1025-byte key/);
    expect(err?.hint).toMatch(/at most 959 bytes/);
    expect(() => checkKeyRoom(job, 100_000, [{ flag: '--results', path: 'r'.repeat(959) }])).not.toThrow();
    expect(() => checkKeyRoom(job, 100_000, [{ flag: '--results', path: 'r'.repeat(960) }])).toThrow(/--results/);
    expect(MAX_KEY_BYTES).toBe(1024);
  });
});
