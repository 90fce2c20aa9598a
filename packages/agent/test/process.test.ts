/**
 * runCommand ends when the command's shell exits, even while a process it left in the background
 * still holds its stdout or stderr; the leftover is killed with the command's process group and the
 * log holds everything written up to the exit.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../src/process.js';

const dirs: string[] = [];
const strays: number[] = [];

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gq-process-'));
  dirs.push(d);
  return d;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

afterEach(() => {
  for (const p of strays.splice(0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function run(command: string) {
  const d = dir();
  const logFile = join(d, 'log');
  const started = Date.now();
  const r = await runCommand({ command, cwd: d, env: { PATH: process.env.PATH }, logFile, timeoutSeconds: 0 }).result;
  return { r, ms: Date.now() - started, log: readFileSync(logFile, 'utf8'), d };
}

describe('runCommand with a process left in the background', () => {
  it('ends at the exit of the command, kills the leftover, keeps the log up to the exit', async () => {
    const { r, ms, log, d } = await run('echo out; echo err >&2; sleep 600 & echo $! > bg.pid; echo last >&2; exit 3');
    expect(r.exitCode).toBe(3);
    expect(ms).toBeLessThan(2000);
    expect(log).toBe('out\nerr\nlast\n');
    expect(r.stderrTail).toBe('err\nlast');
    const bg = Number(readFileSync(join(d, 'bg.pid'), 'utf8'));
    strays.push(bg);
    // Killed with the group (give the kernel a moment to reap it).
    await new Promise((res) => setTimeout(res, 100));
    expect(alive(bg)).toBe(false);
  });

  it('a holder outside the group (setsid) does not keep the task running', async () => {
    const { r, ms, log, d } = await run('echo before >&2; setsid sleep 600 & echo $! > bg.pid; exit 0');
    const bg = Number(readFileSync(join(d, 'bg.pid'), 'utf8'));
    strays.push(bg);
    expect(r.exitCode).toBe(0);
    expect(ms).toBeLessThan(2000);
    expect(log).toBe('before\n');
  });

  it('a command without leftovers still ends at once with its whole output', async () => {
    const big = 200_000;
    const { r, ms, log } = await run(`head -c ${big} /dev/zero | tr '\\0' x >&2; echo done`);
    expect(r.exitCode).toBe(0);
    expect(ms).toBeLessThan(2000);
    expect(log.length).toBe(big + 'done\n'.length);
  });
});
