import { describe, expect, it } from 'vitest';
import { defaultLocalWorkers, splitWorkers } from '../src/scaling.js';

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

describe('splitWorkers with slots', () => {
  it('gives a type no more workers than ceil(tasks ÷ slots)', () => {
    expect(splitWorkers({ a: 7 }, 8, { a: 3 })).toEqual({ a: 3 });
    expect(splitWorkers({ a: 6 }, 8, { a: 3 })).toEqual({ a: 2 });
  });
  it('shares the budget by the workers each type needs', () => {
    // a needs ceil(40/4) = 10 workers, b needs 10: an even split of 4.
    expect(splitWorkers({ a: 40, b: 10 }, 4, { a: 4, b: 1 })).toEqual({ a: 2, b: 2 });
  });
  it('still gives every type with work one worker', () => {
    expect(splitWorkers({ a: 1, b: 1 }, 1, { a: 8, b: 8 })).toEqual({ a: 1, b: 1 });
  });
});

describe('defaultLocalWorkers', () => {
  it('runs about one task per CPU: ceil(CPUs ÷ the most slots), at least one', () => {
    expect(defaultLocalWorkers(8)).toBe(8);
    expect(defaultLocalWorkers(8, { a: 3 })).toBe(3);
    expect(defaultLocalWorkers(8, { a: 2, b: 4 })).toBe(2);
    expect(defaultLocalWorkers(2, { a: 16 })).toBe(1);
  });
});
