import { Readable, Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { mergeResults, mergeResultsTo } from '../src/results/merge.js';

describe('mergeResults', () => {
  it('puts task first, unions columns in first-seen order, rows in task order', async () => {
    const m = await mergeResults([
      { task: 3, text: 'b,c\n5,6\n' },
      { task: 1, text: 'a,b\n1,2\n' },
    ]);
    expect(m.columns).toEqual(['task', 'a', 'b', 'c']);
    expect(m.csv).toBe('task,a,b,c\n1,1,2,\n3,,5,6\n');
  });

  it('keeps fields with commas, quotes and newlines intact', async () => {
    const text = 'note,value\n"has, comma","say ""hi"""\n"two\nlines",x\n';
    const m = await mergeResults([{ task: 1, text: '\ufeff' + text.replace(/\n/g, '\r\n') }]);
    const rows = parse(m.csv, { columns: true }) as Record<string, string>[];
    expect(rows).toEqual([
      { task: '1', note: 'has, comma', value: 'say "hi"' },
      { task: '1', note: 'two\r\nlines', value: 'x' },
    ]);
  });

  it('renames a result column called task and reports bad or empty files', async () => {
    const m = await mergeResults([
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

/** The merge as it was before it streamed (whole files in memory): the output must not change. */
function referenceMerge(files: readonly { task: number; text: string }[]): { csv: string; columns: string[]; rows: number; problems: string[] } {
  const columns: string[] = [];
  const seen = new Set<string>();
  const rows: Array<Record<string, string>> = [];
  const problems: string[] = [];
  for (const f of [...files].sort((a, b) => a.task - b.task)) {
    let records: string[][];
    try {
      records = parse(f.text, { bom: true, relax_column_count: false, skip_empty_lines: true });
    } catch {
      problems.push(`${f.task}:invalid`);
      continue;
    }
    if (!records.length) {
      problems.push(`${f.task}:empty`);
      continue;
    }
    const header = records[0]!.map((h) => (h === 'task' ? 'task_result' : h));
    for (const h of header) if (!seen.has(h)) (seen.add(h), columns.push(h));
    if (records.length === 1) problems.push(`${f.task}:norows`);
    for (const r of records.slice(1)) {
      const row: Record<string, string> = { task: String(f.task) };
      header.forEach((h, i) => (row[h] = r[i] ?? ''));
      rows.push(row);
    }
  }
  const all = ['task', ...columns];
  const csv = stringify(rows.map((r) => all.map((c) => r[c] ?? '')), { header: true, columns: all, record_delimiter: '\n' });
  return { csv: rows.length ? csv : stringify([], { header: true, columns: all }), columns: all, rows: rows.length, problems };
}

describe('mergeResultsTo (streamed)', () => {
  const cases: { task: number; text: string }[][] = [
    [],
    [{ task: 1, text: 'a\n' }],
    [
      { task: 2, text: '\ufeffx,task,x\r\n1,2,3\r\n\r\n4,5,6\r\n' },
      { task: 1, text: 'é,"q""uote"\n"multi\nline ü",€\n' },
      { task: 3, text: 'a,b\n1\n' },
      { task: 4, text: 'b,z\n,\n"",""\n' },
      { task: 5, text: 'task_result,task\nA,B\n' },
    ],
  ];

  for (const [i, files] of cases.entries()) {
    it(`writes what the in-memory merge wrote, byte for byte, in chunks of any size (case ${i})`, async () => {
      const want = referenceMerge(files);
      // 0: each file read whole (ResultSource.readSmall) rather than streamed.
      for (const chunk of [0, 1, 3, 1 << 16]) {
        const out: Buffer[] = [];
        const sink = new Writable({
          write(c: Buffer, _e, cb) {
            out.push(Buffer.from(c));
            cb();
          },
        });
        const sources = files.map((f) => ({
          task: f.task,
          open: () => {
            const b = Buffer.from(f.text, 'utf8');
            const parts: Buffer[] = [];
            for (let k = 0; k < b.length; k += chunk) parts.push(b.subarray(k, k + chunk));
            return Readable.from(parts);
          },
          readSmall: () => (chunk === 0 ? Buffer.from(f.text, 'utf8') : undefined),
        }));
        const m = await mergeResultsTo(sources, sink);
        expect(Buffer.concat(out).toString('utf8')).toBe(want.csv);
        expect(m.columns).toEqual(want.columns);
        expect(m.rows).toBe(want.rows);
        expect(m.problems.map((p) => `${p.task}:${/valid/.test(p.message) ? 'invalid' : /empty/.test(p.message) ? 'empty' : 'norows'}`)).toEqual(
          want.problems,
        );
      }
    });
  }
});
