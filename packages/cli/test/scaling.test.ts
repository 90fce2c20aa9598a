import { describe, expect, it } from 'vitest';
import { splitWorkers } from '../src/scaling.js';

describe('splitWorkers', () => {
  it('shares workers in proportion to pending tasks', () => {
    expect(splitWorkers({ a: 30, b: 10 }, 4)).toEqual({ a: 3, b: 1 });
  });
  it('gives every type with work at least one worker', () => {
    expect(splitWorkers({ a: 100, b: 1, c: 1 }, 2)).toEqual({ a: 1, b: 1, c: 1 });
  });
  it('never gives a type more workers than tasks', () => {
    expect(splitWorkers({ a: 2 }, 8)).toEqual({ a: 2 });
  });
  it('skips types without work and uses the whole budget', () => {
    const s = splitWorkers({ a: 10, b: 0, c: 10 }, 5);
    expect(s.b).toBeUndefined();
    expect(s.a! + s.c!).toBe(5);
  });
});
