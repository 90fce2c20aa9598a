/**
 * The report's data: what `gq report` gathers from a job (aggregate.ts builds it from the task
 * pages, read.ts adds the instances, costs and log tails) and hands to the layout and the HTML.
 * Plain data, bounded whatever the number of tasks.
 */
import type { AttemptOutcome } from '@gq/common';

/** How an attempt bar is coloured: its outcome, or 'running' while it runs. */
export type BarOutcome = AttemptOutcome | 'running';

export const BAR_OUTCOMES: readonly BarOutcome[] = ['succeeded', 'failed', 'timeout', 'interrupted', 'lost', 'released', 'cancelled', 'running'];

/** Colours of the outcomes (the legend, the bars, the histogram); tested in the browser. */
export const OUTCOME_COLOURS: Readonly<Record<BarOutcome, string>> = {
  succeeded: '#2e9d57',
  failed: '#d64545',
  timeout: '#e07b00',
  interrupted: '#7b5cd6',
  lost: '#b8860b',
  released: '#8fa3b8',
  cancelled: '#6b6b6b',
  running: '#3b82f6',
};

/** Attempts drawn one bar each up to this many; above it, each worker's lane is drawn as density bins. */
export const MAX_BARS = 2000;
/** Failures listed with their error and log tail, and the lines of log kept for each. */
export const MAX_FAILURES = 50;
export const LOG_TAIL_LINES = 20;

/** One attempt, drawn as one bar of its worker's lane. Times are epoch ms. */
export interface Bar {
  lane: string;
  task: number;
  /** 1-based position of the attempt in the task's history. */
  attempt: number;
  start: number;
  end: number;
  outcome: BarOutcome;
  exitCode?: number;
}

/** One worker (instance or local worker process): a lane of the timeline. */
export interface Lane {
  id: string;
  instanceType?: string;
  lifecycle?: string;
  /** Epoch ms of its first attempt (lanes are drawn in this order). */
  first: number;
  attempts: number;
}

/** A failed task, with the tail of its log (read.ts fills `logTail`). */
export interface Failure {
  task: number;
  command: string;
  error?: string;
  exitCode?: number;
  signal?: string;
  attempts: number;
  logKey?: string;
  stderrTail?: string;
  logTail?: string;
  /** Why the log could not be read, when it could not. */
  logError?: string;
}

/** Tasks and attempts of one instance type (the task's own type; attempts by where they ran). */
export interface TypeRow {
  instanceType: string;
  tasks: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  open: number;
  attempts: number;
  interruptions: number;
  /** From the cost view (read.ts): instances, spend in USD (null: price unknown), mean task seconds. */
  instances?: number;
  spend?: number | null;
  meanTaskSeconds?: number | null;
}

/** The run-time histogram: bins of quarter powers of two of seconds, counts per outcome. */
export interface RunTimes {
  /** Index of the first bin: its lower edge is 2^(from/4) s. */
  from: number;
  /** counts[i][k]: attempts of bin from+i with outcome RUN_OUTCOMES[k]. */
  counts: number[][];
  /** Count, mean and max seconds of the succeeded attempts. */
  succeeded: { n: number; meanSeconds?: number; maxSeconds?: number };
}

/** Outcomes of the attempts that ran to an end of their own, as the histogram splits them. */
export const RUN_OUTCOMES = ['succeeded', 'failed', 'timeout'] as const;

/** Density bins of the timeline (above MAX_BARS attempts). */
export interface Density {
  t0: number;
  /** Bin width, ms. */
  width: number;
  bins: number;
  /** Per lane (in `lanes` order): busy ms per bin and outcome, bin-major (bin * BAR_OUTCOMES.length + k). */
  busy: Float64Array[];
}

export interface ReportData {
  job: {
    name: string;
    backend: string;
    createdAt: string;
    total: number;
    counts: { queued: number; running: number; succeeded: number; failed: number; cancelled: number };
    cancelRequested: boolean;
    maxAttempts: number;
  };
  /** When the report was made (epoch ms): the end of running bars and the ETA's start. */
  now: number;
  /** Epoch ms of the first attempt's start and the last attempt's end (undefined: nothing ran). */
  first?: number;
  last?: number;
  lanes: Lane[];
  /** Every attempt, when there are at most MAX_BARS; otherwise undefined and `density` is set. */
  bars?: Bar[];
  density?: Density;
  attempts: number;
  attemptsByOutcome: Record<BarOutcome, number>;
  runTimes: RunTimes;
  /** Tasks finished (any final state) per bin of `finished.width` ms from `finished.t0`. */
  finished: { t0: number; width: number; counts: number[] };
  failures: Failure[];
  failedTotal: number;
  types: TypeRow[];
  /** Total spend in USD (null: some price unknown; undefined: not computed). */
  spend?: number | null;
  /**
   * When the job should end (epoch ms), the estimate `gq status` shows (cost/eta.ts: mean task
   * time, tasks left, live slots); undefined: it cannot be known yet, or nothing is left.
   */
  etaAt?: number;
}
