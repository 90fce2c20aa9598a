/**
 * Fault injection for the fault tests, and nothing else: GQ_TEST_FAULT names points where the
 * agent kills itself with SIGKILL (`kill:<point>`) or skips a step (`skip:<step>`), each optionally
 * once only (`kill:after-upload@/tmp/marker` fires for the first agent that creates the marker).
 * `%j` in a marker's path stands for the worker's job (setFaultJob): tests that share one
 * environment for every agent arm a point for one job only, and run side by side.
 * Several faults are separated by commas. Unset in normal use: every call is then a no-op.
 */
import { writeFileSync } from 'node:fs';

export const FAULT_ENV = 'GQ_TEST_FAULT';

let faultJob = '';
/** The job this worker serves, for `%j` in a marker's path (run.ts). */
export function setFaultJob(job: string): void {
  faultJob = job;
}

function matching(kind: 'kill' | 'skip', point: string): boolean {
  const spec = process.env[FAULT_ENV];
  if (!spec) return false;
  for (const item of spec.split(',')) {
    const [name, marker] = item.trim().split('@');
    if (name !== `${kind}:${point}`) continue;
    if (!marker) return true;
    try {
      writeFileSync(marker.replaceAll('%j', faultJob), String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      /* another agent fired it already */
    }
  }
  return false;
}

/** Die here, as a crash or `kill -9` would, when the tests ask for it. */
export function crashPoint(point: 'install' | 'after-claim' | 'after-upload' | 'after-record'): void {
  if (matching('kill', point)) process.kill(process.pid, 'SIGKILL');
}

/** Whether the tests asked to skip a step (e.g. `extend`: the heartbeat stops extending visibility). */
export function skipStep(step: 'extend'): boolean {
  return matching('skip', step);
}
