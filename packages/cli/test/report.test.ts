/** gq report's pure parts: the aggregation over task pages, the layout and the HTML (no I/O). */
import { describe, expect, it } from 'vitest';
import { emptyCounts, type TaskRecord } from '@gq/common';
import { attemptsOf, ReportBuilder, runBin } from '../src/report/aggregate.js';
import { eta, finishedCurve, histogram, MAX_DENSITY_BINS, span, subRows, timeline, timeTicks } from '../src/report/layout.js';
import { reportHtml } from '../src/report/html.js';
import { MAX_BARS, MAX_FAILURES, OUTCOME_COLOURS } from '../src/report/model.js';
import { tailLines } from '../src/report/read.js';
import { att, bigJob, iso, job, T0, task } from './report-fixture.js';
import { TimeGrid } from '../src/report/time-grid.js';

/** A small finished job: a retry, an interruption, a failure. */
function small() {
  const tasks = [
    task(1, 'SUCCEEDED', [att('w-1', T0 + 1000, T0 + 11_000, 'succeeded', 0)]),
    task(2, 'SUCCEEDED', [att('w-2', T0 + 1000, T0 + 3000, 'failed', 1), att('w-1', T0 + 12_000, T0 + 20_000, 'succeeded', 0)]),
    task(3, 'SUCCEEDED', [att('w-2', T0 + 4000, T0 + 5000, 'interrupted'), att('w-2', T0 + 6000, T0 + 16_000, 'succeeded', 0)]),
    task(4, 'FAILED', [1, 2, 3].map((i) => att('w-3', T0 + i * 4000, T0 + i * 4000 + 2000, 'failed', 2)), { error: 'exited with code 2', logKey: 'jobs/rep-job/tasks/4/log.txt' }),
  ];
  const j = job(4, { counts: { ...emptyCounts(), succeeded: 3, failed: 1 } });
  const b = new ReportBuilder(j, T0 + 60_000);
  b.add(tasks.slice(0, 2));
  b.add(tasks.slice(2));
  return b.finish();
}

describe('report aggregation', () => {
  it('one bar per attempt, lanes in order of first use, outcomes counted', () => {
    const d = small();
    expect(d.bars).toHaveLength(8);
    expect(d.lanes.map((l) => [l.id, l.attempts])).toEqual([
      ['w-1', 2],
      ['w-2', 3],
      ['w-3', 3],
    ]);
    expect(d.attemptsByOutcome).toMatchObject({ succeeded: 3, failed: 4, interrupted: 1 });
    expect(d.bars!.filter((b) => b.task === 2).map((b) => [b.attempt, b.outcome, b.lane])).toEqual([
      [1, 'failed', 'w-2'],
      [2, 'succeeded', 'w-1'],
    ]);
    expect(d.failedTotal).toBe(1);
    expect(d.failures[0]).toMatchObject({ task: 4, error: 'exited with code 2', exitCode: undefined, attempts: 3 });
    expect(d.runTimes.succeeded.n).toBe(3);
    expect(d.runTimes.succeeded.maxSeconds).toBe(10);
    expect(d.finished.counts.reduce((a, v) => a + v, 0)).toBe(4);
    expect(d.types).toEqual([expect.objectContaining({ instanceType: 'c5.large', tasks: 4, succeeded: 3, failed: 1, attempts: 8 })]);
  });

  it('a record without history still shows its last attempt; a running one ends now', () => {
    const old = { ...task(1, 'SUCCEEDED', []), history: undefined, lastInstance: 'w-9', startedAt: iso(T0), finishedAt: iso(T0 + 5000) };
    expect(attemptsOf(old)).toEqual([att('w-9', T0, T0 + 5000, 'succeeded')]);
    const never = { ...task(2, 'QUEUED', []), history: undefined };
    expect(attemptsOf(never)).toEqual([]);
    const b = new ReportBuilder(job(2, { counts: { ...emptyCounts(), running: 1, queued: 1 } }), T0 + 30_000);
    b.add([task(1, 'RUNNING', [att('w-1', T0 + 10_000, undefined)]), never]);
    const d = b.finish();
    expect(d.bars).toEqual([expect.objectContaining({ outcome: 'running', start: T0 + 10_000, end: T0 + 30_000 })]);
  });

  it('a job with nothing run yet, and an outcome this gq does not know, still make a report', () => {
    const empty = new ReportBuilder(job(3, { counts: { ...emptyCounts(), queued: 3 } }), T0 + 5000).finish();
    expect(empty.attempts).toBe(0);
    expect(reportHtml(empty)).toContain('No attempt has started yet.');
    const b = new ReportBuilder(job(1), T0 + 5000);
    b.add([task(1, 'SUCCEEDED', [{ ...att('w', T0, T0 + 1000), outcome: 'vanished' as never }])]);
    expect(b.finish().bars![0]!.outcome).toBe('lost');
  });

  it('keeps the first failures only, and counts them all', () => {
    const tasks = Array.from({ length: MAX_FAILURES + 5 }, (_, i) => task(i + 1, 'FAILED', [att('w', T0, T0 + 1000, 'failed', 1)], { command: 'x'.repeat(1000) }));
    const b = new ReportBuilder(job(tasks.length, { counts: { ...emptyCounts(), failed: tasks.length } }), T0 + 5000);
    b.add(tasks);
    const d = b.finish();
    expect(d.failures).toHaveLength(MAX_FAILURES);
    expect(d.failedTotal).toBe(MAX_FAILURES + 5);
    expect(d.failures[0]!.command.length).toBeLessThan(310);
  });

  it('the time grid doubles its bins and keeps sums exact', () => {
    const g = new TimeGrid(0, 4, 10);
    const s = g.track(1);
    g.spread(0, 40, (b, ms) => s.add(b, 0, ms));
    expect(Array.from(s.data)).toEqual([10, 10, 10, 10]);
    g.spread(35, 75, (b, ms) => s.add(b, 0, ms)); // past the end: bins of 20, then 40
    expect(g.width).toBe(20);
    expect(Array.from(s.data)).toEqual([20, 20 + 5, 20, 15]);
    expect(s.data.reduce((a, v) => a + v, 0)).toBe(80);
  });

  it('run-time bins are quarter powers of two', () => {
    expect(runBin(1)).toBe(0);
    expect(runBin(2)).toBe(4);
    expect(runBin(2.5)).toBe(5);
    expect(runBin(0)).toBe(-16);
  });

  it('100,000 tasks: density bins, bounded data, a small file, in about a second', () => {
    const n = 100_000;
    const workers = 40;
    const { job: j, pages, now } = bigJob(n, workers);
    const t = performance.now();
    const b = new ReportBuilder(j, now);
    for (const page of pages) b.add(page);
    const d = b.finish();
    expect(d.attempts).toBe(n + n / 50);
    expect(d.bars).toBeUndefined();
    expect(d.density!.busy).toHaveLength(workers);
    const tl = timeline(d);
    expect(tl.mode).toBe('density');
    const bins = new Set(tl.rects.map((r) => `${r.x}|${tl.lanes.findIndex((l) => r.y >= l.y && r.y < l.y + l.h)}`));
    expect(bins.size).toBeLessThanOrEqual(MAX_DENSITY_BINS);
    expect(tl.rects.length).toBeGreaterThan(workers);
    const html = reportHtml(d);
    const ms = performance.now() - t;
    expect(Buffer.byteLength(html)).toBeLessThan(2_000_000);
    expect(html).toContain('data-mode="density"');
    // About 0.5 s here; a loaded machine gets a margin.
    expect(ms).toBeLessThan(2500);
  });
});

describe('report layout', () => {
  it('bars lie in their lane, start to end, one per attempt, retries marked', () => {
    const d = small();
    const t = timeline(d);
    expect(t.mode).toBe('bars');
    expect(t.rects).toHaveLength(8);
    const { from, to } = span(d);
    expect(from).toBe(T0);
    expect(to).toBe(T0 + 20_000);
    const r = t.rects.find((x) => x.task === 1)!;
    expect(r.x).toBeCloseTo((1000 / 20_000) * 900);
    expect(r.w).toBeCloseTo((10_000 / 20_000) * 900);
    const lane = t.lanes[0]!;
    expect(r.y).toBeGreaterThanOrEqual(lane.y);
    expect(r.y + r.h).toBeLessThanOrEqual(lane.y + lane.h);
    const html = reportHtml(d);
    expect(html.match(/<rect class="bar[^"]*" data-outcome=/g)).toHaveLength(8);
    expect(html.match(/class="bar retry"/g)).toHaveLength(4); // attempts 2+ of tasks 2, 3 and 4
    expect(html).toContain(`data-outcome="interrupted" data-task="3" data-attempt="1"`);
    expect(html).toContain(`fill="${OUTCOME_COLOURS.failed}"`);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });

  it('overlapping attempts of one worker (slots) get rows of their own', () => {
    expect(subRows([
      { start: 0, end: 10 },
      { start: 5, end: 8 },
      { start: 10, end: 12 },
      { start: 6, end: 20 },
    ])).toEqual({ row: [0, 1, 0, 2], rows: 3 });
  });

  it("the ETA is gq status's estimate, shown only while tasks are left", () => {
    const d = small();
    expect(eta({ ...d, etaAt: d.now + 1000 })).toBeUndefined(); // nothing left
    const open = { ...d, job: { ...d.job, total: 8, counts: { ...d.job.counts, queued: 4 } } };
    expect(eta(open)).toBeUndefined(); // not known (no estimate given)
    Object.assign(open, { etaAt: open.now + 59_000 });
    expect(eta(open)).toBe(open.now + 59_000);
    const c = finishedCurve(open);
    expect(c.eta!.to[0]).toBeCloseTo(900);
    expect(reportHtml(open)).toContain('id="eta"');
  });

  it('ticks at nice steps', () => {
    expect(timeTicks(0, 60_000).map((t) => t.label)).toEqual(['0', '10s', '20s', '30s', '40s', '50s', '1m00s']);
    expect(timeTicks(0, 3 * 3600_000).length).toBeLessThanOrEqual(11);
  });

  it('the histogram stacks outcomes per bin', () => {
    const h = histogram(small());
    expect(h.bars.flatMap((b) => b.segments).reduce((a, s) => a + s.n, 0)).toBe(7);
  });

  it('escapes what tasks wrote', () => {
    const d = small();
    d.failures[0]!.logTail = '<script>alert(1)</script>';
    d.failures[0]!.command = 'echo "<b>"';
    const html = reportHtml(d);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('the tail of a log', () => {
    expect(tailLines(Array.from({ length: 30 }, (_, i) => `l${i}`).join('\n') + '\n', 3)).toBe('l27\nl28\nl29');
    expect(tailLines('one')).toBe('one');
    // The end of a longer log: its first, partial line goes.
    expect(tailLines('rtial\nl1\nl2\n', 20, true)).toBe('l1\nl2');
    expect(tailLines('only part of a long line', 20, true)).toBe('only part of a long line');
  });

  it(`above ${MAX_BARS} attempts, no bars are kept`, () => {
    const b = new ReportBuilder(job(MAX_BARS + 1), T0 + 10_000);
    b.add(Array.from({ length: MAX_BARS + 1 }, (_, i) => task(i + 1, 'SUCCEEDED', [att('w', T0, T0 + 1000, 'succeeded', 0)])));
    expect(b.finish().bars).toBeUndefined();
  });
});
