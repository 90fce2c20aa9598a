import { describe, expect, it } from 'vitest';
import type { InstanceRecord, JobRecord } from '@gq/common';
import { etaLines, etaOf, roughDuration, tagsText } from '../src/live-report.js';

const NOW = Date.parse('2026-01-01T17:28:00Z');
const job = (over: Partial<JobRecord> = {}): JobRecord =>
  ({
    name: 'j',
    backend: 'aws',
    instanceTypes: { 'c5.large': 400 },
    counts: { queued: 80, running: 8, succeeded: 312, failed: 0, cancelled: 0 },
    slots: { 'c5.large': 4 },
    ...over,
  }) as unknown as JobRecord;
const inst = (i: string, over: Partial<InstanceRecord> = {}): InstanceRecord => ({ job: 'j', instance: i, instanceType: 'c5.large', state: 'BUSY', heartbeatAt: '', ...over });

describe('gq status: the ETA and the tags', () => {
  it('says when the job should end and what that rests on', () => {
    const instances = [inst('i-a', { tasksRun: 156, taskSeconds: 6396 }), inst('i-b', { tasksRun: 156, taskSeconds: 6396 })];
    const s = { ...etaOf(job(), instances, [], NOW), counts: job().counts };
    // 80 queued × 41 s on 2 × 4 slots = 410 s.
    expect(s.eta).toMatchObject({ seconds: 410, finishedTasks: 312, meanTaskSeconds: 41, slots: 8, at: '2026-01-01T17:34:50.000Z' });
    expect(etaLines(s, NOW)).toEqual(['  ETA: ~7 min (at 17:34 UTC), from 312 finished task(s) averaging 41 s on 8 slot(s)']);
  });

  it('says why there is no ETA, and nothing once every task is final', () => {
    const s = { ...etaOf(job(), [inst('i-a')], [], NOW), counts: job().counts };
    expect(s.eta).toBeNull();
    expect(etaLines(s, NOW)).toEqual(['  ETA: not known yet (no task has finished yet)']);
    expect(etaLines({ eta: null, counts: { queued: 0, running: 0 } }, NOW)).toEqual([]);
    const due = { seconds: 0, at: '2026-01-01T17:28:00.000Z', basis: 'b', finishedTasks: 1, meanTaskSeconds: 1, slots: 1 };
    expect(etaLines({ eta: due, counts: { queued: 0, running: 1 } }, NOW)).toEqual(['  ETA: due now (the running task(s) have run past the mean), b']);
  });

  it('names a far-off day, and words durations roughly', () => {
    const eta = { seconds: 3 * 86400, at: '2026-01-04T17:28:00.000Z', basis: 'b', finishedTasks: 1, meanTaskSeconds: 1, slots: 1 };
    expect(etaLines({ eta, counts: { queued: 1, running: 0 } }, NOW)).toEqual(['  ETA: ~3 days (at 2026-01-04 17:28 UTC), b']);
    expect([45, 840, 9000].map(roughDuration)).toEqual(['45 s', '14 min', '2.5 h']);
  });

  it('shows each tag with how long ago it was set (none for a tag without its time)', () => {
    const at = new Date(NOW - 12_000).toISOString();
    expect(tagsText({ percent_complete: '40', stage: 'fit' }, { percent_complete: at }, NOW)).toBe('percent_complete=40 (12 s ago) stage=fit');
    expect(tagsText({}, undefined, NOW)).toBe('');
  });
});
