/** Task records for gq report's tests: attempts, tasks, a job, and a large synthetic job page by page. */
import { emptyCounts, type AttemptRecord, type JobRecord, type TaskRecord } from '@gq/common';
import { makeSpec } from '../../common/test/contract/status.contract.js';

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
export const iso = (ms: number) => new Date(ms).toISOString();

export function job(total: number, over: Partial<JobRecord> = {}): JobRecord {
  const spec = makeSpec('rep-job', total, { createdAt: iso(T0), instanceTypes: { 'c5.large': total } });
  return { ...spec, counts: { ...emptyCounts(), succeeded: total }, cancelRequested: false, updatedAt: iso(T0), ...over };
}

export function att(instance: string, start: number, end: number | undefined, outcome?: AttemptRecord['outcome'], exitCode?: number): AttemptRecord {
  return { instance, startedAt: iso(start), ...(end !== undefined ? { endedAt: iso(end) } : {}), ...(outcome ? { outcome } : {}), ...(exitCode !== undefined ? { exitCode } : {}) };
}

export function task(n: number, state: TaskRecord['state'], history: AttemptRecord[], over: Partial<TaskRecord> = {}): TaskRecord {
  const last = history[history.length - 1];
  return {
    job: 'rep-job',
    task: n,
    instanceType: 'c5.large',
    command: `run ${n}`,
    state,
    attempts: history.length,
    tags: {},
    history,
    startedAt: last?.startedAt,
    finishedAt: state === 'RUNNING' || state === 'QUEUED' ? undefined : last?.endedAt,
    updatedAt: iso(T0),
    version: 3,
    ...over,
  };
}

/**
 * A job of `n` tasks on `workers` workers, one after another on each, page by page: every
 * hundredth task fails, every fiftieth attempt before it was interrupted.
 */
export function bigJob(n: number, workers: number): { job: JobRecord; pages: TaskRecord[][]; now: number } {
  const j = job(n, { counts: { ...emptyCounts(), succeeded: n - n / 100 - n / 50, failed: n / 100, running: workers, queued: n / 50 - workers } });
  const pages: TaskRecord[][] = [];
  for (let p = 0; p < n; p += 1000) {
    const page: TaskRecord[] = [];
    for (let i = p; i < Math.min(n, p + 1000); i++) {
      const w = `i-${String(i % workers).padStart(17, '0')}`;
      const start = T0 + 60_000 + Math.floor(i / workers) * 4000;
      const h = [att(w, start, start + 3000 + (i % 7) * 100, i % 100 === 0 ? 'failed' : 'succeeded', 0)];
      if (i % 50 === 0) h.unshift(att(w, start - 2000, start - 1000, 'interrupted'));
      page.push(task(i + 1, i % 100 === 0 ? 'FAILED' : 'SUCCEEDED', h, { lastInstance: w }));
    }
    pages.push(page);
  }
  return { job: j, pages, now: T0 + 3 * 3600_000 };
}
