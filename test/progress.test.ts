/**
 * Progress bars and terminal output: a piped gq prints plain text (no ANSI escape, no bar); on a
 * pseudo-terminal (util-linux `script`) submit and results draw their bars on stderr, and neither
 * NO_COLOR nor --json draws anything.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { drawsOn } from '../packages/cli/src/progress.js';
import { GQ, gq, gqEnv, ROOT, testHome } from './support/cli.js';

const ESC = '\x1b';
const BAR = /[\u2588\u2591]/; // shades_classic: █ done, ░ to do

const home = testHome('progress');
const env = gqEnv(home);
const code = join(home, 'code');
const codeTty = join(home, 'code-tty');
const jobs = join(home, 'jobs.csv');

const sh = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;

/** gq on a pseudo-terminal: everything it wrote (stdout and stderr together), and its exit code. */
function onTerminal(args: string[], extra: NodeJS.ProcessEnv = {}): { code: number | null; out: string } {
  const r = spawnSync('script', ['-qec', [process.execPath, GQ, ...args].map(sh).join(' '), '/dev/null'], {
    cwd: ROOT,
    env: { ...env, TERM: 'xterm', ...extra },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout };
}

const haveScript = spawnSync('script', ['--version']).status === 0;

/** A code folder of its own (another bundle, so that it is uploaded again). */
function codeFolder(dir: string, tag: string): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < 50; i++) writeFileSync(join(dir, `f${i}.txt`), `file ${i} ${tag}\n`);
}

beforeAll(() => {
  codeFolder(code, 'piped');
  codeFolder(codeTty, 'tty');
  writeFileSync(jobs, 'instance_type,command\n' + [1, 2, 3].map((i) => `local,echo n > results.csv; echo ${i} >> results.csv`).join('\n') + '\n');
});

describe('the drawing rule', () => {
  it('draws only on a terminal, without NO_COLOR (any non-empty value) and TERM=dumb', () => {
    expect(drawsOn({ isTTY: true }, {})).toBe(true);
    expect(drawsOn({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(drawsOn({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(drawsOn({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(drawsOn({ isTTY: false }, {})).toBe(false);
    expect(drawsOn({}, {})).toBe(false);
  });
});

describe('progress bars', () => {
  it('a piped submit, status and results print plain text: no escape, no bar', async () => {
    const sub = await gq(['submit', jobs, '--name', 'piped', '--code', code, '--wait'], env, { timeoutMs: 60_000 });
    expect(sub.code, sub.stderr).toBe(0);
    const st = await gq(['status', 'piped'], env);
    const res = await gq(['results', 'piped', '--out', join(home, 'out-piped')], env);
    expect(res.code, res.stderr).toBe(0);
    for (const r of [sub, st, res]) {
      expect(r.stdout + r.stderr).not.toContain(ESC);
      expect(r.stdout + r.stderr).not.toMatch(BAR);
    }
    expect(sub.stderr).toContain('Submitted job piped');
  });

  it.skipIf(!haveScript)('on a terminal, submit draws bundling, upload and queueing bars and results a download bar', () => {
    const sub = onTerminal(['submit', jobs, '--name', 'tty', '--code', codeTty, '--wait']);
    expect(sub.code, sub.out).toBe(0);
    for (const label of ['Bundling code', 'Uploading code', 'Queueing tasks']) expect(sub.out).toContain(label);
    expect(sub.out).toMatch(BAR);
    expect(sub.out).toContain(`${ESC}[`);
    const res = onTerminal(['results', 'tty', '--out', join(home, 'out-tty')]);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain('Downloading');
    expect(res.out).toContain('Wrote ');
  });

  it.skipIf(!haveScript)('on a terminal, NO_COLOR and --json get no bar and no escape at all', () => {
    const plain = onTerminal(['submit', jobs, '--name', 'nocolor', '--code', code, '--wait'], { NO_COLOR: '1' });
    expect(plain.code, plain.out).toBe(0);
    expect(plain.out).toContain('Submitted job nocolor');
    const json = onTerminal(['submit', jobs, '--name', 'json', '--code', code, '--wait', '--json']);
    expect(json.code, json.out).toBe(0);
    const res = onTerminal(['results', 'json', '--out', join(home, 'out-json'), '--json']);
    expect(res.code, res.out).toBe(0);
    for (const out of [plain.out, json.out, res.out]) {
      expect(out).not.toContain(ESC);
      expect(out).not.toMatch(BAR);
    }
  });
  if (!haveScript) it('SKIPPED: no `script` (util-linux) here, so the terminal cases were not run', () => undefined);
});
