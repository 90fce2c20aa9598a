/** Is a worker process alive? Guards against zombies and against a pid reused by another program. */
import { readFileSync } from 'node:fs';

/**
 * True when `pid` is a live (not zombie) process; on Linux, also that its command line carries
 * `marker` (the worker's instance id), so a recycled pid is never taken for our worker.
 */
export function processAlive(pid: number | undefined, marker?: string): boolean {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X' || state === 'x') return false;
    if (marker === undefined) return true;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker);
  } catch {
    return false; // vanished meanwhile
  }
}
