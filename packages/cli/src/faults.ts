/**
 * Fault injection for the tests, and nothing else (like packages/agent/src/faults.ts):
 * GQ_TEST_FAULT=pause:<point> makes `gq` stop at that point of its work, print
 * "gq: test fault: paused at <point>" on stderr and wait there until a signal ends it, so a test
 * can interrupt a submission at an exact step instead of relying on timing. Several faults are
 * separated by commas. Unset in normal use: every call is then a no-op.
 *
 * Points: `before-enqueue` (submit: tasks recorded, no message sent yet), `before-workers`
 * (submit: every message sent, no worker started).
 */
export const FAULT_ENV = 'GQ_TEST_FAULT';

export type PausePoint = 'before-enqueue' | 'before-workers';

export async function pausePoint(point: PausePoint): Promise<void> {
  const spec = process.env[FAULT_ENV];
  if (!spec || !spec.split(',').some((s) => s.trim() === `pause:${point}`)) return;
  process.stderr.write(`gq: test fault: paused at ${point}\n`);
  // Until a signal: the timer keeps the process alive, the promise never settles.
  await new Promise<never>(() => setInterval(() => undefined, 60_000));
}
