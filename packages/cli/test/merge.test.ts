import { Readable, Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { mergeResults, mergeResultsTo } from '../src/results/merge.js';
import { resultColumns } from '../src/results/columns.js';
import { sink } from './sink.js';

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
    // Task 3's header is valid CSV: its columns are kept though no row of it is.
    expect(m.columns).toEqual(['task', 'task_result', 'x', 'a', 'b']);
    expect(m.rows).toBe(1);
    expect(m.problems.map((p) => p.task)).toEqual([2, 3, 4]);
    expect(m.problems[1]!.message).toMatch(/not valid CSV/);
  });
});

/**
 * The merge in memory, whole files at once (as it was before it streamed), with the rules of
 * merge.ts: the streamed merge must write the same bytes.
 */
function referenceMerge(files: readonly { task: number; text: string }[]): { csv: string; columns: string[]; rows: number; problems: string[] } {
  const columns: string[] = [];
  const seen = new Set<string>(['task']);
  const rows: Array<Record<string, string>> = [];
  const problems: string[] = [];
  const opts = { bom: true, relax_column_count: true, skip_empty_lines: true } as const;
  for (const f of [...files].sort((a, b) => a.task - b.task)) {
    let records: string[][];
    let invalid = false;
    try {
      records = parse(f.text, opts);
    } catch (e) {
      records = parse(f.text, { ...opts, to: Number((e as { records: number }).records) });
      invalid = true;
    }
    // The order merge.ts reports in: ragged rows, then the broken record, then empty / no rows.
    for (const r of records.slice(1)) if (r.length !== records[0]!.length) problems.push(`${f.task}:ragged`);
    if (invalid) problems.push(`${f.task}:invalid`);
    if (!records.length) {
      if (!invalid) problems.push(`${f.task}:empty`);
      continue;
    }
    if (records.length === 1 && !invalid) problems.push(`${f.task}:norows`);
    const width = Math.max(...records.map((r) => r.length));
    const header = resultColumns(records[0]!, width, new Set(['task']));
    for (const h of header) if (!seen.has(h)) (seen.add(h), columns.push(h));
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
      { task: 6, text: 'a,b\n1,2\n"never closed,3\n4,5\n' },
      { task: 7, text: 'a,b\n1,2\n"q"z,3\n4,5\n' },
      { task: 8, text: 'a,,a\n1,2,3,4,5\n' },
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
        expect(m.problems.map((p) => `${p.task}:${/fields and the header/.test(p.message) ? 'ragged' : /valid/.test(p.message) ? 'invalid' : /empty/.test(p.message) ? 'empty' : 'norows'}`)).toEqual(
          want.problems,
        );
      }
    });
  }
});

describe('every value kept (the renaming rule, columns.ts)', () => {
  it('a repeated column name: x, x_2, ... (a name already in the header is skipped)', async () => {
    expect(resultColumns(['x', 'y', 'x', 'x', 'x_2'], 5, new Set(['task']))).toEqual(['x', 'y', 'x_3', 'x_4', 'x_2']);
    const m = await mergeResults([{ task: 1, text: 'x,y,x\n1,2,3\n' }]);
    expect(m.csv).toBe('task,x,y,x_2\n1,1,2,3\n');
    expect(m.problems).toEqual([]);
  });

  it('task and task_result both: task becomes task_result_2, task_result keeps its name', async () => {
    const m = await mergeResults([{ task: 4, text: 'task,task_result,v\n9,8,7\n' }]);
    expect(m.csv).toBe('task,task_result_2,task_result,v\n4,9,8,7\n');
  });

  it('an empty header name becomes column_<position>', () => {
    expect(resultColumns(['a', '', 'b'], 3, new Set(['task']))).toEqual(['a', 'column_2', 'b']);
  });

  it('gq provenance columns are reserved as task is: a file column gq_state becomes gq_state_result', async () => {
    const m = await mergeResults(
      [
        { task: 1, text: 'gq_state,v\nmine,1\n', provenance: ['SUCCEEDED', '1'] },
        { task: 2, text: 'v\n2\n', provenance: ['SUCCEEDED', '2'] },
      ],
      { provenance: ['gq_state', 'gq_attempts'] },
    );
    expect(m.csv).toBe('task,gq_state,gq_attempts,gq_state_result,v\n1,SUCCEEDED,1,mine,1\n2,SUCCEEDED,2,,2\n');
  });
});

describe('bad files: reported with task and line, good rows kept', () => {
  it('a short row is kept with empty values, a long row keeps its extra values in column_<n>', async () => {
    const m = await mergeResults([
      { task: 1, text: 'a,b\n1,2\n3\n\n4,5,6,7\n"multi\nline",8\n' },
      { task: 2, text: 'a,b\n9,9\n' },
    ]);
    expect(m.csv).toBe('task,a,b,column_3,column_4\n1,1,2,,\n1,3,,,\n1,4,5,6,7\n1,"multi\nline",8,,\n2,9,9,,\n');
    expect(m.problems).toEqual([
      { task: 1, line: 3, message: expect.stringMatching(/1 fields and the header 2; kept, the missing values empty/) },
      { task: 1, line: 5, message: expect.stringMatching(/4 fields .* the extra values in column_3\.\.column_4/) },
    ]);
  });

  it('a quote never closed: the rows before it are kept, the line given', async () => {
    const m = await mergeResults([
      { task: 1, text: 'a,b\n1,2\n3,4\n"open,5\n6,7\n' },
      { task: 2, text: 'a,b\n8,9\n' },
    ]);
    expect(m.csv).toBe('task,a,b\n1,1,2\n1,3,4\n2,8,9\n');
    expect(m.problems).toEqual([{ task: 1, line: 4, message: expect.stringMatching(/never closed; kept the 2 rows before it/) }]);
  });

  it('text after a closing quote: the rows before it are kept, the line given', async () => {
    const m = await mergeResults([{ task: 3, text: 'a\n1\n"x"y\n2\n' }]);
    expect(m.csv).toBe('task,a\n3,1\n');
    expect(m.problems).toEqual([{ task: 3, line: 3, message: expect.stringMatching(/follows the closing quote of a field; kept the 1 row before it/) }]);
  });

  it('more than a few ragged rows: the first five reported, the rest counted', async () => {
    const m = await mergeResults([{ task: 1, text: 'a,b\n' + '1\n'.repeat(8) }]);
    expect(m.rows).toBe(8);
    expect(m.problems.map((p) => p.line)).toEqual([2, 3, 4, 5, 6, undefined]);
    expect(m.problems[5]!.message).toMatch(/3 more rows/);
  });
});

describe('mergeResultsTo with sources from a function (gq results: walked twice, nothing kept per small file)', () => {
  const files = [
    { task: 1, text: 'a,b\n1,2\n' },
    { task: 2, text: 'b,c\n3,4\n"never closed\n' },
    { task: 3, text: 'a,,a\n5,6,7,8\n' },
    { task: 4, text: 'a\n' },
  ];

  it('writes what the array form writes, small files read whole and large ones streamed, and walks the sources twice', async () => {
    const want = await mergeResults(files);
    for (const small of [true, false]) {
      let walks = 0;
      const out = sink();
      const m = await mergeResultsTo(
        function* () {
          walks++;
          for (const f of files) yield { task: f.task, open: () => Readable.from([Buffer.from(f.text)]), readSmall: () => (small ? Buffer.from(f.text) : undefined) };
        },
        out.w,
      );
      expect(out.text()).toBe(want.csv);
      expect(m.problems).toEqual(want.problems);
      expect(walks).toBe(2);
    }
  });

  it('refuses sources out of task order (it cannot sort a stream)', async () => {
    const src = (task: number) => ({ task, open: () => Readable.from([Buffer.from('a\n1\n')]) });
    await expect(mergeResultsTo(() => [src(2), src(1)], sink().w)).rejects.toThrow(/task order/);
  });
});
