/**
 * A command run without bash (direct-exec.ts) gets what `bash -c COMMAND` would have given its
 * program: the same argv and, checked against bash itself here, the same environment (`_`,
 * SHLVL, PWD, OLDPWD); anything bash would treat specially stays with bash.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { directExec, plainWords } from '../src/direct-exec.js';

const root = mkdtempSync(join(tmpdir(), 'gq-direct-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const real = join(root, 'real');
mkdirSync(real);
symlinkSync(real, join(root, 'link'));
const bin = join(root, 'bin');
mkdirSync(bin);
// A program that prints its argv and its environment, one entry a line, sorted.
writeFileSync(join(bin, 'show'), '#!/bin/sh\necho "argv: $0 $*"\nenv | LC_ALL=C sort\n');
chmodSync(join(bin, 'show'), 0o755);
writeFileSync(join(real, 'local.sh'), '#!/bin/sh\necho "argv: $0 $*"\nenv | LC_ALL=C sort\n');
chmodSync(join(real, 'local.sh'), 0o755);
const PATH = `${bin}:/usr/bin:/bin`;

/**
 * What the program printed when run by bash -c, and when run directly. stdin is /dev/null as in
 * a task (a socket there makes Debian's bash read ~/.bashrc, as if started by sshd).
 */
function both(command: string, env: NodeJS.ProcessEnv, cwd = real) {
  const viaBash = spawnSync('/bin/bash', ['-c', command], { env, cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const d = directExec(command, env, cwd);
  if (!d) return { viaBash: viaBash.stdout, direct: undefined };
  const direct = spawnSync(d.file, d.argv.slice(1), { argv0: d.argv[0], env: d.env, cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { viaBash: viaBash.stdout, direct: direct.stdout, status: [viaBash.status, direct.status] };
}

describe('plainWords: commands bash would only exec', () => {
  it('takes a program and plain arguments', () => {
    expect(plainWords('python3 run.py --alpha 0.5 --out=res.csv')).toEqual(['python3', 'run.py', '--alpha', '0.5', '--out=res.csv']);
    expect(plainWords('  ./solve.sh\tmodel-3.lp  ')).toEqual(['./solve.sh', 'model-3.lp']);
    expect(plainWords('true')).toEqual(['true']);
    expect(plainWords('false')).toEqual(['false']);
  });

  it('leaves to bash what it would expand, redirect, chain or run itself', () => {
    for (const c of [
      'echo hi', // a builtin
      'printf %s x',
      'true --help', // /usr/bin/true would print its help
      'test -f x',
      'cd /tmp',
      'if true; then :; fi',
      'time sleep 1',
      'FOO=1 python3 x.py', // an assignment
      'python3 "a b.py"',
      "python3 'x'",
      'python3 $HOME/x.py',
      'python3 `pwd`/x.py',
      'ls *.csv',
      'ls file?.txt',
      'ls [ab].txt',
      'cat ~/x',
      'echo {1..3}',
      'a; b',
      'a && b',
      'a | b',
      'a > out',
      'a < in',
      'a &',
      'python3 x.py # comment',
      'a\nb',
      'x\\ y',
      '',
      '   ',
    ])
      expect(plainWords(c), c).toBeUndefined();
  });
});

describe('directExec: the same program, argv and environment as bash -c', () => {
  const base = { PATH, HOME: '/root', LANG: 'C.UTF-8', GQ_TASK: '7' };
  const cases: Array<[string, NodeJS.ProcessEnv, string?]> = [
    ['show a b=c', base],
    ['show', { ...base, SHLVL: '4' }],
    ['show', { ...base, SHLVL: '007' }],
    ['show', { ...base, PWD: join(root, 'link') }, real], // a PWD naming the folder through a link: kept
    ['show', { ...base, PWD: '/tmp' }], // a PWD naming another folder: replaced
    ['show', { ...base, PWD: 'relative' }],
    ['show', { ...base, OLDPWD: '/tmp' }], // a folder: kept
    ['show', { ...base, OLDPWD: '/nonexistent' }], // not one: dropped
    ['./local.sh x', base],
    [`${bin}/show y`, base],
    ['show', { ...base, PATH: `${bin}/:/usr/bin` }],
    ['show', { ...base, PATH: `/nonexistent:${bin}:/usr/bin` }],
    ['show', { ...base, 'odd-name': '1' }],
    // relative entries that do not hold it: bash looks there too, then finds the same file
    ['show', { ...base, PATH: `.:${bin}:/usr/bin:/bin` }],
    ['show', { ...base, PATH: `:${bin}:/usr/bin:/bin` }],
  ];
  for (const [command, env, cwd] of cases) {
    it(`${command} with ${JSON.stringify(env).slice(0, 120)}`, () => {
      const r = both(command, env, cwd);
      expect(r.direct).toBeDefined();
      expect(r.direct).toBe(r.viaBash);
      expect(r.status).toEqual([0, 0]);
    });
  }

  it('true and false exit as their builtins do', () => {
    expect(both('true', base).status).toEqual([0, 0]);
    expect(both('false', base).status).toEqual([1, 1]);
  });

  it('leaves to bash an environment that changes how bash starts, a program not found, one found through a relative PATH entry', () => {
    for (const env of [
      { ...base, BASH_ENV: join(root, 'rc') },
      { ...base, SHELLOPTS: 'xtrace' },
      { ...base, 'BASH_FUNC_show%%': '() { echo function; }' },
      { ...base, SHLVL: 'x' },
      { ...base, SHLVL: '999' },
      { ...base, OLDPWD: 'relative' },
    ])
      expect(directExec('show', env, real), JSON.stringify(env)).toBeUndefined();
    // found through a relative PATH entry (the working folder)
    expect(directExec('local.sh', { ...base, PATH: `.:${bin}` }, real)).toBeUndefined();
    expect(directExec('local.sh', { ...base, PATH: `:${bin}` }, real)).toBeUndefined();
    expect(directExec('no-such-program-here', base, real)).toBeUndefined();
    expect(directExec('show', base, real)).toMatchObject({ file: `${bin}/show`, argv: ['show'] });
  });
});
