// Running one command and measuring its wall time and peak memory (max RSS) for the benches:
// GNU time's "Maximum resident set size" when there is /usr/bin/time (of the command's own
// process tree as far as it waits for it: workers a command starts detached are not counted),
// else the highest VmHWM read from /proc while it runs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * Run `cmd args` with `env`; resolves to { mb, s, code } (peak RSS in MB, wall seconds, exit
 * code). A code not in `okCodes` (default [0]) throws with the end of its stderr. `stdout`: an
 * fd or 'ignore' (default).
 */
export async function measure(cmd, args, { env = process.env, stdout = 'ignore', okCodes = [0] } = {}) {
  const t0 = process.hrtime.bigint();
  const child = TIME
    ? spawn(TIME, ['-v', cmd, ...args], { env, stdio: ['ignore', stdout, 'pipe'] })
    : spawn(cmd, args, { env, stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => {
    err = (err + d).slice(-20_000);
  });
  let hwm = 0;
  const poll = TIME
    ? undefined
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) hwm = Math.max(hwm, Number(m[1]));
        } catch {
          /* gone */
        }
      }, 20);
  const [status] = await once(child, 'close');
  if (poll) clearInterval(poll);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  // GNU time exits with the command's code (and says "Command exited with non-zero status N").
  const code = status;
  if (!okCodes.includes(code)) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`);
  const kb = TIME ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)?.[1]) : hwm;
  return { mb: kb / 1024, s, code };
}
