/**
 * Runs the job's install script once per worker: a timeout per attempt, a bounded number of
 * attempts, and the older tool's READY-file convention (a script that writes READY in its working
 * folder or in $HOME has succeeded even if it exits non-zero afterwards). It never loops forever.
 */
import { existsSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './process.js';
import { RUN_FILE } from './workspace.js';
import { crashPoint } from './faults.js';
import { realClock, type Clock } from './clock.js';

export interface InstallOptions {
  script: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
  timeoutSeconds: number;
  attempts: number;
  /** Pause between attempts, seconds. */
  backoffSeconds?: number;
  /** Checked between attempts: stop trying when it returns true. */
  shouldStop?: () => boolean;
  onAttempt?: (n: number) => void;
  /** For the pause between attempts and the log's times; default the real clock. */
  clock?: Pick<Clock, 'now' | 'sleep'>;
}

export interface InstallResult {
  ok: boolean;
  attempts: number;
  /** One line: why the last attempt failed. */
  reason?: string;
}

export async function runInstall(o: InstallOptions): Promise<InstallResult> {
  const clock = o.clock ?? realClock;
  const scriptFile = join(o.cwd, 'INSTALL.sh');
  writeFileSync(scriptFile, o.script, { mode: 0o700 });
  const readyFiles = [join(o.cwd, 'READY'), ...(o.env.HOME ? [join(o.env.HOME, 'READY')] : [])];
  let reason = '';
  for (let n = 1; n <= o.attempts; n++) {
    if (o.shouldStop?.()) return { ok: false, attempts: n - 1, reason: 'stopped before install finished' };
    o.onAttempt?.(n);
    for (const f of readyFiles) rmSync(f, { force: true });
    appendFileSync(o.logFile, `\n===== gq: install attempt ${n} of ${o.attempts} (${new Date(clock.now()).toISOString()}) =====\n`);
    const p = runCommand({
      command: `bash ./INSTALL.sh`,
      cwd: o.cwd,
      env: o.env,
      logFile: o.logFile,
      timeoutSeconds: o.timeoutSeconds,
      graceSeconds: 5,
      runFile: join(o.cwd, RUN_FILE),
    });
    crashPoint('install');
    const r = await p.result;
    const ready = readyFiles.some((f) => existsSync(f));
    if (r.exitCode === 0 || ready) {
      appendFileSync(o.logFile, `===== gq: install succeeded on attempt ${n} =====\n`);
      return { ok: true, attempts: n };
    }
    reason = r.timedOut
      ? `install timed out after ${o.timeoutSeconds}s`
      : r.spawnError
        ? `install could not start: ${r.spawnError}`
        : r.signal
          ? `install killed by ${r.signal}`
          : `install exited with code ${r.exitCode}`;
    const tail = r.stderrTail.split('\n').slice(-3).join(' | ');
    if (tail) reason += `: ${tail}`;
    appendFileSync(o.logFile, `===== gq: ${reason} =====\n`);
    if (n < o.attempts) await clock.sleep((o.backoffSeconds ?? 2) * 1000 * n);
  }
  return { ok: false, attempts: o.attempts, reason: reason.slice(0, 500) };
}
