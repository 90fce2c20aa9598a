/**
 * Merging per-task result CSVs (pure): first column `task`, then the union of the files' columns
 * in the order first seen, rows in task order. A result file's own column named "task" is kept as
 * "task_result". Output is a correct CSV whatever the fields contain.
 */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

export interface TaskResultFile {
  task: number;
  text: string;
}

export interface MergeProblem {
  task: number;
  message: string;
}

export interface Merged {
  csv: string;
  columns: string[];
  rows: number;
  problems: MergeProblem[];
}

export function mergeResults(files: readonly TaskResultFile[]): Merged {
  const columns: string[] = [];
  const seen = new Set<string>();
  const rows: Array<Record<string, string>> = [];
  const problems: MergeProblem[] = [];
  for (const f of [...files].sort((a, b) => a.task - b.task)) {
    let records: string[][];
    try {
      records = parse(f.text, { bom: true, relax_column_count: false, skip_empty_lines: true });
    } catch (e) {
      problems.push({ task: f.task, message: `results file is not valid CSV: ${(e as Error).message}` });
      continue;
    }
    if (!records.length) {
      problems.push({ task: f.task, message: 'results file is empty' });
      continue;
    }
    const header = records[0]!.map((h) => (h === 'task' ? 'task_result' : h));
    for (const h of header) {
      if (!seen.has(h)) {
        seen.add(h);
        columns.push(h);
      }
    }
    if (records.length === 1) problems.push({ task: f.task, message: 'results file has a header but no rows' });
    for (const r of records.slice(1)) {
      const row: Record<string, string> = { task: String(f.task) };
      header.forEach((h, i) => {
        row[h] = r[i] ?? '';
      });
      rows.push(row);
    }
  }
  const all = ['task', ...columns];
  const csv = stringify(rows.map((r) => all.map((c) => r[c] ?? '')), { header: true, columns: all, record_delimiter: '\n' });
  return { csv: rows.length ? csv : stringify([], { header: true, columns: all }), columns: all, rows: rows.length, problems };
}
