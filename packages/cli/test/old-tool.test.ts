import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJobFileWithLines, UserError } from '@gq/common';
import { oldToolAnswer, shellWord, submitFromOldFlags } from '../src/old-tool.js';

describe('the older Python tool, answered', () => {
  it('its job file (the README example: instance_type,command with t2.small rows) is a gq job file as it is', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'gq-old-')), 'jobdetails.csv');
    writeFileSync(f, 'instance_type,command\n' + [1, 2, 3, 4, 5].map((s) => `t2.small,julia wrapper.jl --seed ${s}`).join('\n') + '\n');
    const job = await parseJobFileWithLines(f, { backend: 'aws' });
    expect(job.tasks.map((t) => [t.task, t.instanceType, t.command])).toEqual([1, 2, 3, 4, 5].map((s) => [s, 't2.small', `julia wrapper.jl --seed ${s}`]));
  });

  it('quotes what the shell would split, and only that', () => {
    expect(shellWord('config/jobdetails.csv')).toBe('config/jobdetails.csv');
    expect(shellWord('my code')).toBe("'my code'");
    expect(shellWord("it's")).toBe("'it'\\''s'");
  });

  it('five positionals after submit, with flags between them and values of value-taking flags, give the gq submit', () => {
    const e = oldToolAnswer(['submit', 'job', '--tag_offset', '3', 'jobs.csv', 'I.sh', '-i', 'a=b', 'my code', 'r.csv', '--extra_output_file=x.txt', '--spot']);
    expect(e).toBeInstanceOf(UserError);
    expect(e!.hint).toBe("The same job with gq: gq submit jobs.csv --name job --install I.sh --code 'my code' --results r.csv --input a=b --output x.txt --spot");
  });

  it('leaves a gq command line alone', () => {
    expect(oldToolAnswer(['submit', 'jobs.csv', '--name', 'x', '--wait'])).toBeUndefined();
    expect(oldToolAnswer(['status'])).toBeUndefined();
    expect(oldToolAnswer([])).toBeUndefined();
    expect(oldToolAnswer(['python'])).toBeUndefined();
  });

  it('names the arguments when dispatcher.py is given too few', () => {
    expect(oldToolAnswer(['dispatcher.py', 'j'])!.hint).toBe('The same with gq: gq submit jobfile --name jobname --install install_script --code code_folder --results results_file');
  });

  it('maps the old flags to --input/--output and notes the ones gq does not need', () => {
    expect(submitFromOldFlags({ input: ['a=b'], extra_input_code_path: ['c=d'], extra_output_file: ['o.txt'] })).toEqual({ input: ['a=b', 'c=d'], output: ['o.txt'], notes: [] });
    expect(submitFromOldFlags({})).toEqual({ input: undefined, output: undefined, notes: [] });
    const n = submitFromOldFlags({ create: true, tag_offset: 0 }).notes;
    expect(n).toHaveLength(2);
  });
});
