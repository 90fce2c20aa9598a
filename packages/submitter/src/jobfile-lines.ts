/**
 * Lines of the job file where given instance types are used, for error messages that come after
 * parsing (an instance type that EC2 does not offer). Only on the error path: the file is read a
 * second time, and not at all when it is large (then the messages name task numbers only).
 */
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { NewTask } from '@gq/common';

const MAX_BYTES_TO_RESCAN = 16 * 1024 * 1024;

/** For each instance type, the physical file line of the first task using it (1-based), when known. */
export function firstLines(jobfile: string, tasks: readonly NewTask[], types: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const wanted = new Map<number, string>();
  for (const type of types) {
    const first = tasks.find((t) => t.instanceType === type);
    if (first) wanted.set(first.task, type);
  }
  try {
    if (statSync(jobfile).size > MAX_BYTES_TO_RESCAN) return out;
    const records = parse(readFileSync(jobfile), {
      relax_quotes: true,
      relax_column_count: true,
      skip_empty_lines: false,
      record_delimiter: ['\r\n', '\n', '\r'],
      bom: true,
      info: true,
      raw: true,
    }) as unknown as Array<{ record: string[]; info: { lines: number }; raw: string }>;
    let task = -1; // the header is the first non-blank record
    for (const r of records) {
      if (r.record.every((f) => f.trim() === '')) continue;
      task++;
      const type = wanted.get(task);
      if (!type) continue;
      const inside = r.raw.replace(/(\r\n|\n|\r)$/, '').match(/\r\n|\n|\r/g)?.length ?? 0;
      out.set(type, r.info.lines - inside);
    }
  } catch {
    // Messages fall back to task numbers.
  }
  return out;
}
