/**
 * Slots on the local backend, through the real CLI and worker processes: `--workers 1 --slots 3`
 * is one worker process running three tasks at once, each in its own folder; a task that fails in
 * one slot leaves the others alone.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gq, gqEnv, killAll, pidsMatching, testHome, waitFor } from './support/cli.js';

const homes: string[] = [];
afterEach(async () => {
  for (const h of homes.splice(0)) {
    const left = await waitFor('workers to exit', async () => pidsMatching(h).length === 0, 15_000).catch(() => false);
    expect(killAll(h)).toBe(0);
    expect(left, `processes left running for ${h}`).toBe(true);
  }
});

/** A task that notes its worker, folder and start and end times (ns) in `out`, sleeps, then `then`. */
const timed = (out: string, n: number, seconds: number, then: string) =>
  `echo "$GQ_INSTANCE $PWD $(date +%s%N)" > ${out}/${n}.start; sleep ${seconds}; date +%s%N > ${out}/${n}.end; ${then}`;

describe('local backend: slots', () => {
  it('--workers 1 --slots 3: one worker runs 3 tasks at once in separate folders; a failing one disturbs no other', async () => {
    const home = testHome('slots');
    homes.push(home);
    const env = gqEnv(home);
    const code = join(home, 'code');
    const out = join(home, 'out');
    mkdirSync(code);
    mkdirSync(out);
    const ok = (n: number) => `printf 'id\\n${n}\\n' > results.csv`;
    const rows = [timed(out, 1, 3, ok(1)), timed(out, 2, 1, 'exit 3'), timed(out, 3, 3, ok(3)), timed(out, 4, 0, ok(4))];
    const jobs = join(home, 'jobs.csv');
    writeFileSync(jobs, ['instance_type,command', ...rows.map((r) => `local,"${r.replace(/"/g, '""')}"`)].join('\n') + '\n');
    const sub = await gq(['submit', jobs, '--code', code, '--name', 'slots-job', '--workers', '1', '--slots', '3', '--retries', '0', '--wait', '--json'], env, {
      timeoutMs: 90_000,
    });
    expect(sub.stderr).not.toMatch(/internal error/);
    const final = JSON.parse(sub.stdout);
    expect(final).toMatchObject({ counts: { succeeded: 3, failed: 1, running: 0, queued: 0 } });

    const spans = [1, 2, 3, 4].map((n) => {
      const [instance, dir, start] = readFileSync(join(out, `${n}.start`), 'utf8').trim().split(' ');
      return { instance, dir, start: Number(start), end: Number(readFileSync(join(out, `${n}.end`), 'utf8')) };
    });
    // One worker process ran them all.
    expect(new Set(spans.map((s) => s.instance)).size).toBe(1);
    // The first three at once: each started before any of them ended; each in its own folder.
    const firstEnd = Math.min(...spans.slice(0, 3).map((s) => s.end));
    for (const s of spans.slice(0, 3)) expect(s.start).toBeLessThan(firstEnd);
    expect(new Set(spans.map((s) => s.dir)).size).toBe(4);
    // Task 4 took the slot task 2 left (task 2 failed after 1 s; tasks 1 and 3 ran on for 3 s).
    expect(spans[3]!.start).toBeGreaterThanOrEqual(spans[1]!.end);
    expect(spans[3]!.start).toBeLessThan(Math.min(spans[0]!.end, spans[2]!.end));
  });
});
