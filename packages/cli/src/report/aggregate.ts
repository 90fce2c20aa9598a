/**
 * The report's aggregation: tasks go in one page at a time (`add`), and only bounded aggregates
 * are kept: each attempt's bar up to MAX_BARS (then none: per-worker density bins, always kept
 * on an adaptive time grid), run-time histogram bins, finished-task bins, the first
 * MAX_FAILURES failed tasks and per-type counts. `finish` hands back the ReportData. Pure: no I/O.
 */
import type { AttemptRecord, JobRecord, TaskRecord, TaskState } from '@gq/common';
import { TimeGrid, type BinSeries } from './time-grid.js';
import {
  BAR_OUTCOMES,
  MAX_BARS,
  MAX_FAILURES,
  RUN_OUTCOMES,
  type Bar,
  type BarOutcome,
  type Failure,
  type Lane,
  type ReportData,
  type TypeRow,
} from './model.js';

const K = BAR_OUTCOMES.length;
const OUTCOME_INDEX = new Map(BAR_OUTCOMES.map((o, i) => [o, i]));
const RUN_INDEX = new Map<string, number>(RUN_OUTCOMES.map((o, i) => [o, i]));
/** Run-time bins: quarter powers of two of seconds, from 2^-4 s (62 ms) to 2^24 s (194 days). */
const RUN_MIN = -16;
const RUN_MAX = 96;
const MAX_COMMAND = 300;

/** The run-time bin of `seconds` (see RunTimes). */
export function runBin(seconds: number): number {
  const i = Math.floor(4 * Math.log2(Math.max(seconds, 1e-3)));
  return Math.max(RUN_MIN, Math.min(RUN_MAX, i));
}

const FINAL_OUTCOME: Partial<Record<TaskState, BarOutcome>> = { SUCCEEDED: 'succeeded', FAILED: 'failed', CANCELLED: 'cancelled', RUNNING: 'running' };

/**
 * A task's attempts: its history, or, for a record written before gq kept one, its last attempt
 * from the record's own fields (when it ran at all).
 */
export function attemptsOf(t: TaskRecord): AttemptRecord[] {
  if (t.history?.length) return t.history;
  const instance = t.instance ?? t.lastInstance;
  if (!t.startedAt || !instance) return [];
  const outcome = FINAL_OUTCOME[t.state];
  const a: AttemptRecord = { instance, startedAt: t.startedAt };
  if (t.finishedAt) a.endedAt = t.finishedAt;
  if (outcome && outcome !== 'running') a.outcome = outcome;
  return [a];
}

export class ReportBuilder {
  private readonly grid: TimeGrid;
  private readonly finishedBins: BinSeries;
  private readonly lanes = new Map<string, Lane & { busy: BinSeries }>();
  private bars: Bar[] | undefined = [];
  private attempts = 0;
  private readonly byOutcome = Object.fromEntries(BAR_OUTCOMES.map((o) => [o, 0])) as Record<BarOutcome, number>;
  private readonly run = new Map<number, number[]>();
  private okN = 0;
  private okSum = 0;
  private okMax = 0;
  private first: number | undefined;
  private last: number | undefined;
  /** The latest end or finish seen: the grid's bins after it are empty. */
  private lastEvent = -Infinity;
  private readonly failures: Failure[] = [];
  private failedTotal = 0;
  private readonly types = new Map<string, TypeRow>();

  constructor(
    private readonly job: JobRecord,
    /** Epoch ms the report is made at: running attempts end here. */
    private readonly now: number,
  ) {
    const t0 = Date.parse(job.createdAt);
    this.grid = new TimeGrid(Number.isFinite(t0) ? t0 : now);
    this.finishedBins = this.grid.track(1);
    for (const type of Object.keys(job.instanceTypes)) this.type(type);
  }

  private type(name: string): TypeRow {
    let r = this.types.get(name);
    if (!r) this.types.set(name, (r = { instanceType: name, tasks: 0, succeeded: 0, failed: 0, cancelled: 0, open: 0, attempts: 0, interruptions: 0 }));
    return r;
  }

  private lane(a: AttemptRecord, start: number): Lane & { busy: BinSeries } {
    let l = this.lanes.get(a.instance);
    if (!l) {
      l = { id: a.instance, first: start, attempts: 0, busy: this.grid.track(K) };
      this.lanes.set(a.instance, l);
    }
    l.instanceType ??= a.instanceType;
    l.lifecycle ??= a.lifecycle;
    l.first = Math.min(l.first, start);
    l.attempts++;
    return l;
  }

  /** One page of tasks (any size; each task once). */
  add(tasks: readonly TaskRecord[]): void {
    for (const t of tasks) this.addTask(t);
  }

  private addTask(t: TaskRecord): void {
    const row = this.type(t.instanceType);
    row.tasks++;
    if (t.state === 'SUCCEEDED') row.succeeded++;
    else if (t.state === 'FAILED') row.failed++;
    else if (t.state === 'CANCELLED') row.cancelled++;
    else row.open++;
    row.interruptions += t.interruptions ?? 0;
    if (t.finishedAt && (t.state === 'SUCCEEDED' || t.state === 'FAILED' || t.state === 'CANCELLED')) {
      const at = Date.parse(t.finishedAt);
      if (Number.isFinite(at)) {
        this.finishedBins.add(this.grid.binOf(Math.max(at, this.grid.t0)), 0, 1);
        this.lastEvent = Math.max(this.lastEvent, at);
      }
    }
    if (t.state === 'FAILED') {
      this.failedTotal++;
      if (this.failures.length < MAX_FAILURES) {
        this.failures.push({
          task: t.task,
          command: t.command.length > MAX_COMMAND ? `${t.command.slice(0, MAX_COMMAND)}…` : t.command,
          error: t.error,
          exitCode: t.exitCode,
          signal: t.signal,
          attempts: t.attempts,
          logKey: t.logKey,
          stderrTail: t.stderrTail,
        });
      }
    }
    attemptsOf(t).forEach((a, i) => this.addAttempt(t, a, i + 1));
  }

  private addAttempt(t: TaskRecord, a: AttemptRecord, n: number): void {
    const start = Date.parse(a.startedAt);
    if (!Number.isFinite(start)) return;
    const ended = a.endedAt ? Date.parse(a.endedAt) : NaN;
    // An outcome this gq does not know (a record from a newer one) is drawn as lost.
    const said: BarOutcome = a.outcome ?? (t.state === 'RUNNING' && !a.endedAt ? 'running' : 'lost');
    const outcome: BarOutcome = OUTCOME_INDEX.has(said) ? said : 'lost';
    const end = Math.max(start, Number.isFinite(ended) ? ended : outcome === 'running' ? this.now : start);
    this.attempts++;
    this.byOutcome[outcome]++;
    this.type(a.instanceType ?? t.instanceType).attempts++;
    this.first = Math.min(this.first ?? start, start);
    this.last = Math.max(this.last ?? end, end);
    this.lastEvent = Math.max(this.lastEvent, end);
    const lane = this.lane(a, start);
    const k = OUTCOME_INDEX.get(outcome)!;
    this.grid.spread(start, end, (bin, ms) => lane.busy.add(bin, k, ms));
    if (this.bars) {
      if (this.bars.length < MAX_BARS) this.bars.push({ lane: a.instance, task: t.task, attempt: n, start, end, outcome, ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}) });
      else this.bars = undefined;
    }
    const r = RUN_INDEX.get(outcome);
    if (r !== undefined) {
      const secs = (end - start) / 1000;
      const bin = runBin(secs);
      let c = this.run.get(bin);
      if (!c) this.run.set(bin, (c = RUN_OUTCOMES.map(() => 0)));
      c[r]!++;
      if (outcome === 'succeeded') {
        this.okN++;
        this.okSum += secs;
        this.okMax = Math.max(this.okMax, secs);
      }
    }
  }

  finish(): ReportData {
    const j = this.job;
    const lanes = [...this.lanes.values()].sort((a, b) => a.first - b.first || a.id.localeCompare(b.id));
    const runBins = [...this.run.keys()].sort((a, b) => a - b);
    const from = runBins[0] ?? 0;
    const to = runBins[runBins.length - 1] ?? -1;
    const counts: number[][] = [];
    for (let b = from; b <= to; b++) counts.push(this.run.get(b) ?? RUN_OUTCOMES.map(() => 0));
    // Bins up to the last event's (the rest are empty).
    const used = Math.min(this.grid.bins, Math.max(1, Math.floor((Math.max(this.lastEvent, this.grid.t0) - this.grid.t0) / this.grid.width) + 1));
    return {
      job: { name: j.name, backend: j.backend, createdAt: j.createdAt, total: j.total, counts: { ...j.counts }, cancelRequested: j.cancelRequested, maxAttempts: j.maxAttempts },
      now: this.now,
      first: this.first,
      last: this.last,
      lanes: lanes.map(({ busy: _b, ...l }) => l),
      bars: this.bars,
      density: this.bars ? undefined : { t0: this.grid.t0, width: this.grid.width, bins: used, busy: lanes.map((l) => l.busy.data) },
      attempts: this.attempts,
      attemptsByOutcome: { ...this.byOutcome },
      runTimes: { from, counts, succeeded: { n: this.okN, meanSeconds: this.okN ? this.okSum / this.okN : undefined, maxSeconds: this.okN ? this.okMax : undefined } },
      finished: { t0: this.grid.t0, width: this.grid.width, counts: Array.from(this.finishedBins.data.subarray(0, used)) },
      failures: this.failures,
      failedTotal: this.failedTotal,
      types: [...this.types.values()].filter((r) => r.tasks > 0 || r.attempts > 0),
    };
  }
}
