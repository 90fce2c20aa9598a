/**
 * tasks.csv: one row per task with where and how it ran (gq results), the provenance columns
 * that --with-provenance adds to results.csv, and the job file of failed tasks (--failed).
 *
 * Columns: task, command, state, attempts, exit_code, error, instance_type, instance_id, spot,
 * started_at, finished_at, run_seconds, cost_share, results_problem, then one `tag_<key>` column
 * per progress tag key any task has (`gq-agent tag KEY VALUE`: its last value), keys in sorted order.
 * started_at / finished_at / run_seconds are those of the latest attempt; spot is true, false or
 * empty (not known); cost_share is the task's share of its instance's price (empty: price unknown,
 * or not run).
 *
 * Rows are written in two steps so that memory stays flat for 100,000 tasks: while the task pages
 * are read, each row (all but results_problem) goes as one JSON line to a spill file; once the
 * merge knows the problems, the spill file is read back into the CSV, the tag keys now known.
 */
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import type { InstanceRecord, TaskRecord } from '@gq/common';
import { Spill } from './spill.js';

export const TASK_COLUMNS = [
  'task',
  'command',
  'state',
  'attempts',
  'exit_code',
  'error',
  'instance_type',
  'instance_id',
  'spot',
  'started_at',
  'finished_at',
  'run_seconds',
  'cost_share',
] as const;
type TaskColumn = (typeof TASK_COLUMNS)[number];

/** The tasks.csv columns --with-provenance adds to results.csv, each prefixed gq_: all but the task's own row and the error text. */
export const PROVENANCE_FROM: readonly TaskColumn[] = TASK_COLUMNS.filter((c) => c !== 'task' && c !== 'command' && c !== 'error');
export const PROVENANCE_COLUMNS = PROVENANCE_FROM.map((c) => `gq_${c}`);
const PROVENANCE_AT = PROVENANCE_FROM.map((c) => TASK_COLUMNS.indexOf(c));

/** What tasks.csv knows of an instance: how it is bought (the cost part records `lifecycle`). */
export type InstanceInfo = Pick<InstanceRecord, 'instance'> & { lifecycle?: string };

function spotOf(info: InstanceInfo | undefined): string {
  const l = info?.lifecycle;
  return l === 'spot' ? 'true' : l === 'on-demand' || l === 'local' ? 'false' : '';
}

function runSeconds(t: TaskRecord): string {
  if (!t.startedAt || !t.finishedAt) return '';
  const s = (Date.parse(t.finishedAt) - Date.parse(t.startedAt)) / 1000;
  return Number.isFinite(s) && s >= 0 ? String(Math.round(s * 1000) / 1000) : '';
}

/** The task's values of TASK_COLUMNS. */
export function taskRow(t: TaskRecord, instances: ReadonlyMap<string, InstanceInfo>): string[] {
  const id = t.lastInstance ?? t.instance ?? '';
  const cost = (t as { costShare?: unknown }).costShare;
  // In TASK_COLUMNS' order (an array, not an object: one row of 100,000 makes less garbage).
  return [
    String(t.task),
    t.command,
    t.state,
    String(t.attempts),
    t.exitCode === undefined ? '' : String(t.exitCode),
    t.error ?? (t.signal ? `killed by ${t.signal}` : ''),
    t.instanceType,
    id,
    id ? spotOf(instances.get(id)) : '',
    t.startedAt ?? '',
    t.finishedAt ?? '',
    runSeconds(t),
    typeof cost === 'number' && Number.isFinite(cost) ? String(cost) : '',
  ];
}

/** The provenance values of a task row (PROVENANCE_COLUMNS' order). */
export const provenanceOf = (row: readonly string[]): string[] => PROVENANCE_AT.map((i) => row[i] ?? '');

/** Rows spilled to a file while the task pages are read; written out as tasks.csv at the end. */
export class TaskRows {
  private readonly spill: Spill<[string[], Record<string, string>]>;
  private readonly tagKeys = new Set<string>();

  constructor(spillFile: string) {
    this.spill = new Spill(spillFile);
  }

  get count(): number {
    return this.spill.count;
  }

  async add(row: readonly string[], tags: Readonly<Record<string, string>>): Promise<void> {
    for (const k of Object.keys(tags)) this.tagKeys.add(k);
    await this.spill.add([row as string[], tags]);
  }

  /** The spilled rows with their tags, in the order added. */
  private spilled(): AsyncGenerator<[string[], Record<string, string>]> {
    return this.spill.values();
  }

  /** Write the CSV to `to`: the spilled rows, each with its results problem (by task) and its tags. */
  async writeCsv(to: Writable, problemOf: (task: number) => string | undefined): Promise<string[]> {
    const keys = [...this.tagKeys].sort();
    const columns = [...TASK_COLUMNS, 'results_problem', ...keys.map((k) => `tag_${k}`)];
    const all = this.spilled();
    async function* rows(): AsyncGenerator<string[]> {
      for await (const [row, tags] of all) yield [...row, problemOf(Number(row[0])) ?? '', ...keys.map((k) => tags[k] ?? '')];
    }
    await csvTo(rows(), columns, to);
    return columns;
  }

  /**
   * Write the spilled tasks as a job file (instance_type,command) to `to`: valid for gq submit
   * whatever the commands hold (csv-stringify quotes commas, quotes and line breaks).
   */
  async writeJobFile(to: Writable): Promise<void> {
    const all = this.spilled();
    const it = TASK_COLUMNS.indexOf('instance_type');
    const cmd = TASK_COLUMNS.indexOf('command');
    async function* rows(): AsyncGenerator<string[]> {
      for await (const [row] of all) yield [row[it]!, row[cmd]!];
    }
    await csvTo(rows(), ['instance_type', 'command'], to);
  }

  /** Close the spill file without writing (an error on the way). */
  abandon(): void {
    this.spill.abandon();
  }
}

function csvTo(rows: AsyncIterable<string[]>, columns: string[], to: Writable): Promise<void> {
  return pipeline(Readable.from(rows), stringify({ header: true, columns, record_delimiter: '\n' }), to);
}
