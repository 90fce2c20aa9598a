import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { mergeResults } from '../src/results/merge.js';

describe('mergeResults', () => {
  it('puts task first, unions columns in first-seen order, rows in task order', () => {
    const m = mergeResults([
      { task: 3, text: 'b,c\n5,6\n' },
      { task: 1, text: 'a,b\n1,2\n' },
    ]);
    expect(m.columns).toEqual(['task', 'a', 'b', 'c']);
    expect(m.csv).toBe('task,a,b,c\n1,1,2,\n3,,5,6\n');
  });

  it('keeps fields with commas, quotes and newlines intact', () => {
    const text = 'note,value\n"has, comma","say ""hi"""\n"two\nlines",x\n';
    const m = mergeResults([{ task: 1, text: '\ufeff' + text.replace(/\n/g, '\r\n') }]);
    const rows = parse(m.csv, { columns: true }) as Record<string, string>[];
    expect(rows).toEqual([
      { task: '1', note: 'has, comma', value: 'say "hi"' },
      { task: '1', note: 'two\r\nlines', value: 'x' },
    ]);
  });

  it('renames a result column called task and reports bad or empty files', () => {
    const m = mergeResults([
      { task: 1, text: 'task,x\n9,1\n' },
      { task: 2, text: '' },
      { task: 3, text: 'a,b\n"unterminated\n' },
      { task: 4, text: 'a\n' },
    ]);
    expect(m.columns).toEqual(['task', 'task_result', 'x', 'a']);
    expect(m.rows).toBe(1);
    expect(m.problems.map((p) => p.task)).toEqual([2, 3, 4]);
    expect(m.problems[1]!.message).toMatch(/not valid CSV/);
  });
});
