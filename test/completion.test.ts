/**
 * `gq completion`: the bash script, sourced in a real bash with COMP_WORDS/COMP_CWORD set,
 * completes commands, a command's own options, option choices and the job name of a finished
 * local job; the zsh script passes `zsh -n`; AWS job names come from the local cache, never AWS.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GQ, gq, gqEnv, testHome } from './support/cli.js';

const home = testHome('completion');
const env = gqEnv(home);
const bin = join(home, 'bin');
const script = join(home, 'gq-completion.bash');

/** COMPREPLY of the completion function for the words typed so far (the last one being completed). */
function complete(words: string[], extraEnv: NodeJS.ProcessEnv = {}): string[] {
  const r = spawnSync(
    'bash',
    ['-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gq_completions gq "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script, ...words],
    { env: { ...env, ...extraEnv, PATH: `${bin}:${env.PATH}` }, encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  // `gq` on PATH, as a user has it: the script asks it for job names.
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'gq'), `#!/bin/sh\nexec "${process.execPath}" "${GQ}" "$@"\n`);
  chmodSync(join(bin, 'gq'), 0o755);
  const s = await gq(['completion', 'bash'], env);
  expect(s.code, s.stderr).toBe(0);
  writeFileSync(script, s.stdout);
  const jobs = join(home, 'jobs.csv');
  writeFileSync(jobs, 'instance_type,command\nlocal,echo ok > results.csv\n');
  const code = join(home, 'code');
  mkdirSync(code);
  const sub = await gq(['submit', jobs, '--name', 'pi-sweep', '--code', code, '--wait', '--json'], env, { timeoutMs: 60_000 });
  expect(sub.code, sub.stderr).toBe(0);
});

describe('gq completion bash', () => {
  it('completes the commands', () => {
    expect(complete(['gq', ''])).toEqual(['cancel', 'clean', 'completion', 'doctor', 'logs', 'prices', 'report', 'results', 'resume', 'retry', 'setup', 'status', 'submit']);
    expect(complete(['gq', 're'])).toEqual(['report', 'results', 'resume', 'retry']);
  });

  it("completes a command's own options only", () => {
    const status = complete(['gq', 'status', '--']);
    expect(status).toContain('--watch');
    expect(status).toContain('--backend');
    expect(status).not.toContain('--spot');
    expect(status).not.toContain('--retries');
    expect(complete(['gq', 'submit', 'jobs.csv', '--sp'])).toEqual(['--spot', '--spot-alternatives', '--spot-interruptions']);
    expect(complete(['gq', 'submit', 'jobs.csv', '--backend', ''])).toEqual(['aws', 'local']);
    expect(complete(['gq', 'completion', 'z'])).toEqual(['zsh']);
  });

  it('completes the job name of a finished local job, in the name position only', () => {
    expect(complete(['gq', 'status', ''])).toEqual(['pi-sweep']);
    expect(complete(['gq', 'logs', '--backend', 'local', 'pi'])).toEqual(['pi-sweep']);
    expect(complete(['gq', 'results', 'x'])).toEqual([]);
    // The task number after the name, and the value of --out, are not job names.
    expect(complete(['gq', 'logs', 'pi-sweep', ''])).toEqual([]);
    expect(complete(['gq', 'results', '--out', ''])).toEqual([]);
  });

  it('on AWS offers the job names this machine used, from the cache, without calling AWS', async () => {
    // No AWS endpoint or credentials at all: a call would fail (or hang); the cache answers.
    expect(complete(['gq', 'status', '--backend', 'aws', ''])).toEqual([]);
    const cache = join(env.GQ_HOME!, 'completion');
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, 'aws-jobs-gq.txt'), 'sweep-b\nsweep-a\n');
    const t0 = Date.now();
    expect(complete(['gq', 'status', '--backend', 'aws', 'sw'])).toEqual(['sweep-a', 'sweep-b']);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('gq completion zsh', () => {
  const zsh = spawnSync('zsh', ['--version']).status === 0;
  it.skipIf(!zsh)('is valid zsh (zsh -n) and completes through bashcompinit', async () => {
    const s = await gq(['completion', 'zsh'], env);
    expect(s.code).toBe(0);
    const file = join(home, 'gq-completion.zsh');
    writeFileSync(file, s.stdout);
    execFileSync('zsh', ['-n', file]);
    // The function itself, run by zsh with bashcompinit's variables.
    const out = execFileSync(
      'zsh',
      ['-c', `source "$1"; COMP_WORDS=(gq status ''); COMP_CWORD=2; _gq_completions gq '' status; print -l -- "\${COMPREPLY[@]}"`, 'zsh', file],
      { env: { ...env, PATH: `${bin}:${env.PATH}`, HOME: home }, encoding: 'utf8' },
    );
    expect(out.split('\n').filter(Boolean)).toEqual(['pi-sweep']);
  });
  if (!zsh) it('SKIPPED: zsh is not installed (apt-get install zsh), so the zsh script was not checked', () => undefined);
});
