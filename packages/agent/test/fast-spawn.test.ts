/**
 * The native spawner (@gq/spawn, posix_spawn) runs a command exactly as child_process did: same
 * exit codes, signals, log, stderr tail, folder, environment, session and process group, stdin,
 * signal dispositions and descriptors; the task's parent is the agent; a command that cannot
 * start is reported the same way. Each case runs through both paths and compares.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nativeSpawner, NODE_SPAWN_ENV } from '../src/fast-spawn.js';
import { runCommand } from '../src/process.js';

const root = mkdtempSync(join(tmpdir(), 'gq-fast-spawn-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  delete process.env[NODE_SPAWN_ENV];
});
let n = 0;

async function run(command: string, how: 'native' | 'node', extra: { cwd?: string; timeoutSeconds?: number } = {}) {
  if (how === 'node') process.env[NODE_SPAWN_ENV] = '1';
  else delete process.env[NODE_SPAWN_ENV];
  const logFile = join(root, `log-${n++}`);
  const p = runCommand({ command, cwd: extra.cwd ?? root, env: { PATH: process.env.PATH, GQ_X: 'a b', EMPTY: '' }, logFile, timeoutSeconds: extra.timeoutSeconds ?? 0 });
  const r = await p.result;
  let log = '';
  try {
    log = readFileSync(logFile, 'utf8');
  } catch {
    /* never opened */
  }
  return { r, log, pid: p.pid };
}

describe('native spawner', () => {
  it('is built here (CI compiles it; without it gq falls back to child_process)', () => {
    expect(nativeSpawner()).toBeDefined();
    process.env[NODE_SPAWN_ENV] = '1';
    expect(nativeSpawner()).toBeUndefined();
  });

  it('the first command of a fresh process is seen to end at once, not by the 1 s safety net', () => {
    // A new process: the spawner's SIGCHLD listener must be there before its first child exits.
    const script = `
      const { runCommand } = await import(${JSON.stringify(new URL('../dist/process.js', import.meta.url).href)});
      const t = Date.now();
      const r = await runCommand({ command: 'true', cwd: '/', env: { PATH: process.env.PATH }, logFile: ${JSON.stringify(join(root, 'first.log'))}, timeoutSeconds: 0 }).result;
      console.log(JSON.stringify({ ms: Date.now() - t, code: r.exitCode }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    const r = JSON.parse(out) as { ms: number; code: number };
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(500);
  });

  const same = [
    'echo out; echo err >&2; exit 3',
    'true',
    'false',
    'printf "%s|" "$GQ_X" "${EMPTY-unset}" "$0"; pwd',
    // own session and process group, parent = the agent, stdin /dev/null
    'read -r line; echo "read=$? [$line]"; ps -o sid=,pgid=,ppid= -p $$ | tr -s " "',
    // every signal at its default and none blocked; only stdio open (ls's own directory aside)
    'grep -E "^(SigIgn|SigBlk)" /proc/self/status; ls /proc/self/fd | sort -n | tr "\\n" " "',
    'kill -TERM $$',
    'env | grep -E "^(GQ_X|EMPTY|PATH)=" | sort',
    'no-such-command-anywhere; echo "after $?"',
    'exec /nonexistent/program',
  ];
  for (const command of same) {
    it(`same result both ways: ${command}`, async () => {
      const a = await run(command, 'native');
      const b = await run(command, 'node');
      // Lines in order within stdout and within stderr; how the two interleave in the log depends
      // on when the agent reads the stderr pipe, both ways.
      const norm = (x: Awaited<ReturnType<typeof run>>) => ({
        exitCode: x.r.exitCode,
        signal: x.r.signal,
        stderrTail: x.r.stderrTail,
        spawnError: x.r.spawnError,
        log: x.log.replaceAll(String(x.pid), 'PID').replaceAll(String(process.pid), 'AGENT').split('\n').sort(),
      });
      expect(norm(a)).toEqual(norm(b));
      const log = a.log.replaceAll(String(a.pid), 'PID').replaceAll(String(process.pid), 'AGENT');
      if (command.startsWith('read')) expect(log).toMatch(/^read=1 \[\]\n ?PID PID AGENT\n$/);
      if (command.startsWith('grep')) expect(log).toMatch(/^SigBlk:\s+0+\nSigIgn:\s+0+\n0 1 2 3 /);
      if (command.startsWith('kill')) expect(a.r.signal).toBe('SIGTERM');
    });
  }

  it('runs a program directly when bash would only exec it, with the same result', async () => {
    const a = await run('env', 'native');
    const b = await run('env', 'node');
    const lines = (s: string) => s.split('\n').filter((l) => !l.startsWith('GQ_RUN_ID=')).sort();
    expect(lines(a.log)).toEqual(lines(b.log));
    expect(lines(a.log)).toContain(`PWD=${root}`);
  });

  it('a folder that is not there: the command does not start, both ways', async () => {
    for (const how of ['native', 'node'] as const) {
      const { r } = await run('true', how, { cwd: join(root, 'missing') });
      expect(r.spawnError, how).toMatch(/ENOENT/);
      expect(r.exitCode, how).toBeNull();
    }
  });

  it('a timeout stops the command and its group', async () => {
    const t0 = Date.now();
    const { r } = await run('sleep 30 & sleep 30', 'native', { timeoutSeconds: 1 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGTERM');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('many commands at once are each reaped with their own status', async () => {
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => run(`exit ${i}`, 'native')));
    expect(rs.map((x) => x.r.exitCode)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });
});
