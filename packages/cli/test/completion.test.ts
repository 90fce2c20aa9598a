import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@gq/common';
import { commandSpec, commandsFromHelp, jobNames, optionsFromHelp, rememberJob } from '../src/completion.js';

const HELP = `gq demo <name> [shell]

Positionals:
  name   Job name                                [string] [required]
  shell  Shell                                   [choices: "bash", "zsh"]

Options:
  -v, --verbose  Debug logs on stderr            [boolean]
      --backend  Where to run                    [choices: "local", "aws"]
      --out      Folder                          [string]

Examples:
  gq demo x --wait  not an option
`;

describe('completion specs from the help texts', () => {
  it('reads options, whether they take a value, and their choices; not the examples', () => {
    expect(optionsFromHelp(HELP)).toEqual([
      { flag: '--verbose', takesValue: false, choices: [] },
      { flag: '--backend', takesValue: true, choices: ['local', 'aws'] },
      { flag: '--out', takesValue: true, choices: [] },
    ]);
  });

  it('reads the commands and what each positional completes to', () => {
    const top = 'gq <command>\n\nCommands:\n  gq submit <jobfile>    Submit\n  gq logs <name> [task]  Logs\n  gq setup               Set up\n\nOptions:\n  --help\n';
    expect(commandsFromHelp(top)).toEqual([
      { name: 'submit', positionals: ['jobfile'] },
      { name: 'logs', positionals: ['name', 'task'] },
      { name: 'setup', positionals: [] },
    ]);
    expect(commandSpec('demo', ['name', 'shell'], HELP).positionals).toEqual(['job', 'choices:bash|zsh']);
  });
});

describe('AWS job names for completion', () => {
  it('are the names used recently, newest first, once each, per stack; nothing on the local backend', async () => {
    const home = mkdtempSync(join(tmpdir(), 'gq-compl-'));
    const aws = loadConfig({ backend: 'aws', home, stack: 'gq' });
    for (const n of ['a', 'b', 'a', 'c']) rememberJob(aws, n);
    expect(await jobNames(aws)).toEqual(['c', 'a', 'b']);
    expect(await jobNames(loadConfig({ backend: 'aws', home, stack: 'other' }))).toEqual([]);
    rememberJob(loadConfig({ backend: 'local', home }), 'x');
    expect(readFileSync(join(home, 'completion', 'aws-jobs-gq.txt'), 'utf8')).toBe('c\na\nb\n');
    expect(await jobNames(loadConfig({ backend: 'local', home }))).toEqual([]);
  });
});
