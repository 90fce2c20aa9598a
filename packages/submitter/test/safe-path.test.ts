import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pathUnder, safeRelative } from '../src/results/safe-path.js';
import { parseInput, relativeInside } from '../src/paths.js';

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
