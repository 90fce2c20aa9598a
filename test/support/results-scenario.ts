/**
 * One job for the tests of `gq results` with provenance (tasks.csv, --with-provenance, --failed),
 * run the same way on both backends: a success with progress tags, a task retried once, two that
 * fail (one with a command holding a comma, quotes and line breaks), and one whose results file
 * repeats column names and has a ragged row. The failing ones succeed once `fixed` exists, so that
 * the job file of failed tasks can be submitted again and succeed.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { expect } from 'vitest';
import { parseJobText } from '../../packages/common/src/job/jobfile/index.js';
import { gq, killAll, pidsMatching, statusJson, waitFor, type CliResult } from './cli.js';

export interface ResultsScenario {
  dir: string;
  code: string;
  job: string;
  type: string;
  commands: string[];
  file: string;
}

/** The scenario's folders and job file; `dir` is writable by the task user (AWS instances). */
export function resultsScenario(dir: string, job: string, type: string): ResultsScenario {
  const code = join(dir, 'code');
  const marks = join(dir, 'marks');
  mkdirSync(code, { recursive: true });
  mkdirSync(marks, { recursive: true });
  chmodSync(marks, 0o777);
  writeFileSync(join(code, 'README'), 'results scenario\n');
  const start = (n: number) => `echo "$GQ_ATTEMPT $GQ_INSTANCE" >> ${marks}/runs-${n}`;
  const commands = [
    `${start(1)}; printf 'a,b\\n1,2\\n' > results.csv; gq-agent tag stage done; gq-agent tag percent_complete 100`,
    `${start(2)}; if [ -e ${marks}/once ]; then printf 'a,b\\n3,4\\n' > results.csv; else touch ${marks}/once; echo boom >&2; exit 3; fi`,
    `${start(3)}; [ -e ${marks}/fixed ] || { echo always failing >&2; exit 7; }; printf 'a,b\\n5,6\\n' > results.csv`,
    `${start(4)}; printf 'task,task_result,x,x\\n9,8,7,6\\n5\\n' > results.csv`,
    `${start(5)}; [ -e ${marks}/fixed ] || exit 9\n# a comment, with "quotes"\nprintf 'a,b\\n7,8\\n' > results.csv`,
  ];
  const file = join(dir, 'jobs.csv');
  writeFileSync(file, ['instance_type,command', ...commands.map((c) => `${type},"${c.replace(/"/g, '""')}"`)].join('\n') + '\n');
  return { dir, code, job, type, commands, file };
}

/** The instance each attempt of task n ran on, as the task saw it ($GQ_INSTANCE). */
function instancesOf(s: ResultsScenario, n: number): string[] {
  return readFileSync(join(s.dir, 'marks', `runs-${n}`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[1]!);
}

const csv = (file: string) => parse(readFileSync(file, 'utf8'), { columns: true }) as Record<string, string>[];

/** After the job ended (tasks 3 and 5 failed): gq results, its tasks.csv and results.csv. */
export async function checkResults(s: ResultsScenario, env: NodeJS.ProcessEnv): Promise<void> {
  const out = join(s.dir, 'out');
  const r = await gq(['results', s.job, '--out', out], env);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/task 4: results file line 3: not valid CSV: the row has 1 fields and the header 4/);
  const header = readFileSync(join(out, 'tasks.csv'), 'utf8').split('\n')[0];
  expect(header).toBe(
    'task,command,state,attempts,exit_code,error,instance_type,instance_id,spot,started_at,finished_at,run_seconds,cost_share,results_problem,tag_percent_complete,tag_stage',
  );
  const rows = csv(join(out, 'tasks.csv'));
  expect(rows.map((x) => x.task)).toEqual(['1', '2', '3', '4', '5']);
  rows.forEach((x, i) => expect(x.command).toBe(s.commands[i]));
  const [t1, t2, t3, t4, t5] = rows as [Record<string, string>, ...Record<string, string>[]];
  expect(t1).toMatchObject({ state: 'SUCCEEDED', attempts: '1', exit_code: '0', error: '', instance_type: s.type, tag_stage: 'done', tag_percent_complete: '100', results_problem: '' });
  expect(t2).toMatchObject({ state: 'SUCCEEDED', attempts: '2', exit_code: '0', tag_stage: '' });
  expect(t3).toMatchObject({ state: 'FAILED', attempts: '2', exit_code: '7' });
  expect(t3!.error).toMatch(/7/);
  expect(t5).toMatchObject({ state: 'FAILED', attempts: '2', exit_code: '9' });
  expect(t4!.results_problem).toMatch(/^line 3: not valid CSV: the row has 1 fields and the header 4; kept/);
  for (const [i, x] of rows.entries()) {
    // The instance of the latest attempt, as the task itself saw it.
    expect(x!.instance_id, `task ${i + 1}`).toBe(instancesOf(s, i + 1).at(-1));
    expect(Date.parse(x!.finished_at!)).toBeGreaterThanOrEqual(Date.parse(x!.started_at!));
    expect(Number(x!.run_seconds)).toBeCloseTo((Date.parse(x!.finished_at!) - Date.parse(x!.started_at!)) / 1000, 2);
    // Its share of the instance's price (a few seconds of a cheap type round to 0 cents).
    expect(x!.cost_share, `task ${i + 1}`).toMatch(/^\d+(\.\d+)?$/);
    expect(['', 'true', 'false']).toContain(x!.spot);
  }
  // results.csv: every value of task 4's file kept under the renaming rule.
  const merged = csv(join(out, 'results.csv'));
  expect(Object.keys(merged[0]!)).toEqual(['task', 'a', 'b', 'task_result_2', 'task_result', 'x', 'x_2']);
  expect(merged.filter((m) => m.task === '4')).toEqual([
    { task: '4', a: '', b: '', task_result_2: '9', task_result: '8', x: '7', x_2: '6' },
    { task: '4', a: '', b: '', task_result_2: '5', task_result: '', x: '', x_2: '' },
  ]);

  // --with-provenance: the gq_* columns after task, the values of tasks.csv.
  const p = await gq(['results', s.job, '--out', join(s.dir, 'prov'), '--with-provenance'], env);
  expect(p.code, p.stderr).toBe(0);
  const prov = csv(join(s.dir, 'prov', 'results.csv'));
  expect(Object.keys(prov[0]!).slice(0, 11)).toEqual([
    'task',
    'gq_state',
    'gq_attempts',
    'gq_exit_code',
    'gq_instance_type',
    'gq_instance_id',
    'gq_spot',
    'gq_started_at',
    'gq_finished_at',
    'gq_run_seconds',
    'gq_cost_share',
  ]);
  const row2 = prov.find((m) => m.task === '2')!;
  expect(row2).toMatchObject({ gq_state: 'SUCCEEDED', gq_attempts: '2', gq_instance_id: t2!.instance_id, gq_started_at: t2!.started_at, a: '3', b: '4' });
}

/** gq results --failed: the failed rows, their logs, and a job file that submits and succeeds. */
export async function checkFailed(
  s: ResultsScenario,
  env: NodeJS.ProcessEnv,
  submitAgain: (file: string, name: string) => Promise<CliResult>,
): Promise<void> {
  const out = join(s.dir, 'failed');
  const r = await gq(['results', s.job, '--out', out, '--failed'], env);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(`gq retry ${s.job} --failed`);
  const rows = csv(join(out, 'failed-tasks.csv'));
  expect(rows.map((x) => [x.task, x.state, x.exit_code])).toEqual([
    ['3', 'FAILED', '7'],
    ['5', 'FAILED', '9'],
  ]);
  expect(readFileSync(join(out, 'tasks', '3', 'log.txt'), 'utf8')).toContain('always failing');
  const jobText = readFileSync(join(out, 'failed-jobs.csv'));
  // The job file reads back, with gq's own parser, as exactly the failed rows.
  expect(parseJobText(jobText, 'failed-jobs.csv')).toEqual([
    { task: 1, instanceType: s.type, command: s.commands[2] },
    { task: 2, instanceType: s.type, command: s.commands[4] },
  ]);
  writeFileSync(join(s.dir, 'marks', 'fixed'), '');
  const again = `${s.job}-again`;
  const sub = await submitAgain(join(out, 'failed-jobs.csv'), again);
  expect(sub.code, sub.stderr).toBe(0);
  const st = await statusJson(again, env);
  expect(st.counts).toMatchObject({ succeeded: 2, failed: 0 });
}

/** No process of `home` is left running (local workers exit by themselves); anything left is killed and fails the test. */
export async function expectWorkersGone(home: string): Promise<void> {
  const gone = await waitFor('workers to exit', async () => pidsMatching(home).length === 0, 15_000).catch(() => false);
  expect(killAll(home), `processes killed for ${home}`).toBe(0);
  expect(gone, `processes left running for ${home}`).toBe(true);
}
