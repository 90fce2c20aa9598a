import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJobText, type TaskRecord } from '@gq/common';
import { sink } from './sink.js';
import { PROVENANCE_COLUMNS, provenanceOf, TaskRows, taskRow, TASK_COLUMNS } from '../src/results/tasks-csv.js';

const base: TaskRecord = {
  job: 'j',
  task: 3,
  instanceType: 'c5.large',
  command: 'run 3',
  state: 'FAILED',
  attempts: 2,
  lastInstance: 'i-0abc',
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:01:30.250Z',
  exitCode: 7,
  error: 'exit code 7',
  tags: { percent_complete: '40' },
  updatedAt: '2026-01-01T00:01:30.250Z',
  version: 5,
};
const row = (t: Partial<TaskRecord> & Record<string, unknown>, inst: Record<string, string | undefined> = {}) => {
  const values = taskRow({ ...base, ...t } as TaskRecord, new Map(Object.entries(inst).map(([k, v]) => [k, { instance: k, lifecycle: v }])));
  return Object.fromEntries(TASK_COLUMNS.map((c, i) => [c, values[i]]));
};

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const spill = () => {
  const d = mkdtempSync(join(tmpdir(), 'gq-tasks-csv-'));
  dirs.push(d);
  return join(d, 'rows');
};

describe('taskRow', () => {
  it('gives the values of every column', () => {
    expect(row({}, { 'i-0abc': 'spot' })).toEqual({
      task: '3',
      command: 'run 3',
      state: 'FAILED',
      attempts: '2',
      exit_code: '7',
      error: 'exit code 7',
      instance_type: 'c5.large',
      instance_id: 'i-0abc',
      spot: 'true',
      started_at: '2026-01-01T00:00:00.000Z',
      finished_at: '2026-01-01T00:01:30.250Z',
      run_seconds: '90.25',
      cost_share: '',
    });
  });

  it('spot: false on demand or locally, empty when not known; cost share once the record has one', () => {
    expect(row({}, { 'i-0abc': 'on-demand' }).spot).toBe('false');
    expect(row({}, { 'i-0abc': 'local' }).spot).toBe('false');
    expect(row({}, {}).spot).toBe('');
    expect(row({ costShare: 0.0123 }).cost_share).toBe('0.0123');
  });

  it('a running task: its current instance, no end, no run time; a killed one: the signal', () => {
    expect(row({ state: 'RUNNING', lastInstance: undefined, instance: 'w-2', finishedAt: undefined })).toMatchObject({ instance_id: 'w-2', finished_at: '', run_seconds: '' });
    expect(row({ error: undefined, exitCode: undefined, signal: 'SIGKILL' })).toMatchObject({ error: 'killed by SIGKILL', exit_code: '' });
  });

  it('provenance values follow PROVENANCE_COLUMNS', () => {
    const values = provenanceOf(taskRow(base, new Map()));
    expect(Object.fromEntries(PROVENANCE_COLUMNS.map((c, i) => [c, values[i]]))).toMatchObject({ gq_state: 'FAILED', gq_attempts: '2', gq_instance_id: 'i-0abc', gq_run_seconds: '90.25' });
  });
});

describe('TaskRows', () => {
  it('writes one tag_<key> column per key seen (sorted), the results problem by task', async () => {
    const rows = new TaskRows(spill());
    await rows.add(taskRow({ ...base, task: 1, tags: { stage: 'b' } }, new Map()), { stage: 'b' });
    await rows.add(taskRow({ ...base, task: 2 }, new Map()), { percent_complete: '40', 'x,y': 'q"' });
    const out = sink();
    const columns = await rows.writeCsv(out.w, (t) => (t === 2 ? 'line 3: bad' : undefined));
    expect(columns.slice(TASK_COLUMNS.length)).toEqual(['results_problem', 'tag_percent_complete', 'tag_stage', 'tag_x,y']);
    const lines = out.text().split('\n');
    expect(lines[0]!.endsWith('results_problem,tag_percent_complete,tag_stage,"tag_x,y"')).toBe(true);
    expect(lines[1]!.endsWith(',,,b,')).toBe(true);
    expect(lines[2]!.endsWith(',line 3: bad,40,,"q"""')).toBe(true);
  });

  it('the job file reads back with gq submit\'s parser as the same commands (commas, quotes, line breaks, spaces)', async () => {
    const commands = ['echo "a,b" \'c\'', 'line one\nline "two", three', '  padded  ', 'tab\there'];
    const file = spill();
    const rows = new TaskRows(file);
    for (const [i, command] of commands.entries()) await rows.add(taskRow({ ...base, task: i + 1, command }, new Map()), {});
    const out = sink();
    await rows.writeJobFile(out.w);
    expect(out.text().startsWith('instance_type,command\n')).toBe(true);
    expect(parseJobText(out.text(), 'failed-jobs.csv')).toEqual(commands.map((command, i) => ({ task: i + 1, instanceType: 'c5.large', command })));
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(4);
  });
});
