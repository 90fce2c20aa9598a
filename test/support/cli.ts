/**
 * Running the real `gq` and `gq-agent` (built) as subprocesses, each test in its own GQ_HOME, and
 * making sure no worker outlives its test.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const GQ = join(ROOT, 'packages', 'cli', 'bin', 'gq.js');
export const GQ_AGENT = join(ROOT, 'packages', 'agent', 'bin', 'gq-agent.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function testHome(label: string): string {
  const base = process.env.GQ_TEST_ROOT ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, `${label.replace(/[^a-z0-9]+/gi, '-')}-`));
  chmodSync(dir, 0o711); // tasks of emulated instances run as gq-task: they may pass through
  return dir;
}

/** Environment for a test's gq: its own home and config, quick leases and idle periods. */
export function gqEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GQ_HOME: join(home, 'gq'),
    GQ_CONFIG: join(home, 'config.json'),
    XDG_CONFIG_HOME: join(home, '.config'),
    GQ_BACKEND: 'local',
    GQ_IDLE: '1',
    GQ_VISIBILITY: '4',
    GQ_LOG_LEVEL: 'info',
    ...extra,
  };
}

export function gq(args: string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [GQ, ...args], { cwd: opts.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`gq ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(t);
      res({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** PIDs of processes whose command line mentions `needle` (e.g. a test's GQ_HOME). */
export function pidsMatching(needle: string): number[] {
  try {
    const out = execFileSync('pgrep', ['-f', '--', needle], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}

/** Kill every process started for this home (workers and their tasks) and report how many there were. */
export function killAll(needle: string): number {
  const pids = pidsMatching(needle);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  return pids.length;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export async function statusJson(name: string, env: NodeJS.ProcessEnv, tasks = false): Promise<any> {
  const r = await gq(['status', name, '--json', ...(tasks ? ['--tasks'] : [])], env);
  if (r.code !== 0) throw new Error(`gq status failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * For an afterEach: every test home's processes (workers, and what their tasks started) exited by
 * themselves within 20 s; any left are killed, and the test fails naming the home.
 */
export async function expectNoProcessesLeft(homes: string[], expect: (v: unknown, msg?: string) => { toBe(x: unknown): void }): Promise<void> {
  for (const h of homes.splice(0)) {
    const left = await waitFor('workers to exit', async () => pidsMatching(h).length === 0, 20_000).catch(() => false);
    const killed = killAll(h);
    expect(left, `processes left running for ${h}`).toBe(true);
    expect(killed).toBe(0);
  }
}
