/**
 * Where everything of the report goes: pure functions from ReportData to shapes in pixels (the
 * timeline's lanes and bars or density bins, the time axis, the run-time histogram, the finished
 * curve and its ETA line). html.ts only writes them out.
 */
import { BAR_OUTCOMES, RUN_OUTCOMES, type BarOutcome, type ReportData } from './model.js';

/** Width of the drawing area of every chart, and of the timeline's lane labels. */
export const PLOT_WIDTH = 900;
export const LABEL_WIDTH = 220;
/** Lanes drawn at most (the rest are counted under the timeline). */
export const MAX_LANES = 300;
/** Density bins drawn at most, over all lanes (bins are merged per lane to stay under it; a bin is one rectangle per outcome in it). */
export const MAX_DENSITY_BINS = 6000;
const TIMELINE_MAX_HEIGHT = 900;

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
  outcome: BarOutcome;
  title: string;
  /** Bars: the task and its attempt number. */
  task?: number;
  attempt?: number;
  /** Density bins: the share of the bin the lane was busy (0..1, for the opacity). */
  busy?: number;
}

export interface Timeline {
  height: number;
  lanes: { label: string; title: string; y: number; h: number }[];
  rects: Rect[];
  /** Lanes not drawn (above MAX_LANES). */
  hiddenLanes: number;
  mode: 'bars' | 'density';
  ticks: Tick[];
}

export interface Tick {
  x: number;
  label: string;
}

/** The time span every chart of the report shares (epoch ms). */
export function span(d: ReportData): { from: number; to: number } {
  const created = Date.parse(d.job.createdAt);
  const from = Math.min(Number.isFinite(created) ? created : d.now, d.first ?? Infinity);
  const open = d.job.counts.queued + d.job.counts.running > 0;
  const finishedEnd = d.finished.t0 + d.finished.width * d.finished.counts.length;
  let to = Math.max(d.last ?? from, open ? d.now : Math.min(finishedEnd, d.last ?? finishedEnd));
  if (to <= from) to = from + 1000;
  return { from, to };
}

const STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

/** "1m30s", "2h05m", "45s": a duration for people. */
export function duration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 100) / 100}s`;
  if (seconds < 10) return `${Math.round(seconds * 10) / 10}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** Axis ticks every "nice" step, at most about 10, labelled by the time since `from`. */
export function timeTicks(from: number, to: number, width = PLOT_WIDTH): Tick[] {
  const range = (to - from) / 1000;
  const step = STEPS_S.find((s) => range / s <= 10) ?? Math.ceil(range / 10 / 86400) * 86400;
  const out: Tick[] = [];
  for (let i = 0; i * step <= range + 1e-9; i++) out.push({ x: ((i * step) / range) * width, label: i === 0 ? '0' : duration(i * step) });
  return out;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/**
 * Sub-rows of a lane whose attempts overlap (a worker with several slots): each bar goes on the
 * first row free at its start. Returns each bar's row, and the number of rows.
 */
export function subRows(bars: readonly { start: number; end: number }[]): { row: number[]; rows: number } {
  const order = bars.map((_, i) => i).sort((a, b) => bars[a]!.start - bars[b]!.start || bars[a]!.end - bars[b]!.end);
  const ends: number[] = [];
  const row = new Array<number>(bars.length).fill(0);
  for (const i of order) {
    const b = bars[i]!;
    let r = ends.findIndex((e) => e <= b.start);
    if (r < 0) r = ends.push(b.end) - 1;
    else ends[r] = b.end;
    row[i] = r;
  }
  return { row, rows: Math.max(1, ends.length) };
}

function laneLabel(l: ReportData['lanes'][number]): { label: string; title: string } {
  const what = [...new Set([l.instanceType, l.lifecycle].filter(Boolean))].join(', ');
  const label = l.id.length > 22 ? `${l.id.slice(0, 21)}…` : l.id;
  return { label: what ? `${label} (${what})` : label, title: `${l.id}${what ? ` — ${what}` : ''}: ${l.attempts} attempt(s)` };
}

export function timeline(d: ReportData): Timeline {
  const { from, to } = span(d);
  const x = (t: number) => ((t - from) / (to - from)) * PLOT_WIDTH;
  const lanes = d.lanes.slice(0, MAX_LANES);
  const index = new Map(lanes.map((l, i) => [l.id, i]));
  const out: Timeline = { height: 0, lanes: [], rects: [], hiddenLanes: d.lanes.length - lanes.length, mode: d.bars ? 'bars' : 'density', ticks: timeTicks(from, to) };
  if (d.bars) {
    const perLane = lanes.map(() => [] as typeof d.bars);
    for (const b of d.bars) {
      const i = index.get(b.lane);
      if (i !== undefined) perLane[i]!.push(b);
    }
    const rows = perLane.map((bs) => subRows(bs));
    const totalRows = rows.reduce((a, r) => a + r.rows, 0);
    const rowH = Math.max(3, Math.min(22, Math.floor(TIMELINE_MAX_HEIGHT / Math.max(1, totalRows))));
    let y = 0;
    lanes.forEach((l, i) => {
      const h = rows[i]!.rows * rowH;
      out.lanes.push({ ...laneLabel(l), y, h });
      perLane[i]!.forEach((b, j) => {
        const left = x(b.start);
        const secs = (b.end - b.start) / 1000;
        out.rects.push({
          x: left,
          y: y + rows[i]!.row[j]! * rowH + 1,
          w: Math.max(1, x(b.end) - left),
          h: Math.max(1, rowH - 2),
          outcome: b.outcome,
          task: b.task,
          attempt: b.attempt,
          title: `task ${b.task}, attempt ${b.attempt}: ${b.outcome}${b.exitCode !== undefined ? ` (exit ${b.exitCode})` : ''}, ${duration(secs)} from ${iso(b.start)} on ${b.lane}`,
        });
      });
      y += h;
    });
    out.height = y;
    return out;
  }
  const den = d.density!;
  const rowH = Math.max(2, Math.min(22, Math.floor(TIMELINE_MAX_HEIGHT / Math.max(1, lanes.length))));
  // Bins merged `f` at a time so that lanes × bins stays under MAX_DENSITY_BINS.
  const f = Math.max(1, Math.ceil((lanes.length * den.bins) / MAX_DENSITY_BINS));
  const K = BAR_OUTCOMES.length;
  lanes.forEach((l, i) => {
    const y = i * rowH;
    out.lanes.push({ ...laneLabel(l), y, h: rowH });
    const busy = den.busy[d.lanes.indexOf(l)]!;
    for (let b0 = 0; b0 < den.bins; b0 += f) {
      const per = BAR_OUTCOMES.map(() => 0);
      for (let b = b0; b < Math.min(den.bins, b0 + f); b++) for (let k = 0; k < K; k++) per[k]! += busy[b * K + k]!;
      const total = per.reduce((a, v) => a + v, 0);
      if (total <= 0) continue;
      const start = den.t0 + b0 * den.width;
      const end = den.t0 + Math.min(den.bins, b0 + f) * den.width;
      const share = Math.min(1, total / (end - start));
      const parts = BAR_OUTCOMES.map((o, k) => [o, per[k]!] as const).filter(([, v]) => v > 0);
      const title = `${l.id}, ${iso(start)} + ${duration((end - start) / 1000)}: attempts ran ${parts.map(([o, v]) => `${o} ${duration(v / 1000)}`).join(', ')}`;
      // One segment per outcome, stacked in the lane's height by its share of the busy time, so
      // that a few failures or interruptions among many successes still show.
      const top = y + (rowH > 3 ? 1 : 0);
      const h = Math.max(1, rowH > 3 ? rowH - 2 : rowH);
      let at = top;
      for (const [o, v] of parts) {
        const sh = (v / total) * h;
        out.rects.push({ x: x(start), y: at, w: Math.max(0.5, x(end) - x(start)), h: Math.max(0.5, sh), outcome: o, busy: share, title });
        at += sh;
      }
    }
  });
  out.height = lanes.length * rowH;
  return out;
}

export interface HistogramBar {
  x: number;
  w: number;
  /** Stacked segments, bottom first. */
  segments: { y: number; h: number; outcome: (typeof RUN_OUTCOMES)[number]; n: number }[];
  label: string;
}

export const CHART_HEIGHT = 180;

/** Lower edge in seconds of run-time bin `i` (quarter powers of two). */
export const runEdge = (i: number) => 2 ** (i / 4);

export function histogram(d: ReportData): { bars: HistogramBar[]; max: number } {
  const c = d.runTimes.counts;
  const max = Math.max(1, ...c.map((r) => r.reduce((a, v) => a + v, 0)));
  const w = PLOT_WIDTH / Math.max(1, c.length);
  const bars = c.map((r, i) => {
    let y = CHART_HEIGHT;
    const segments = r.flatMap((n, k) => {
      if (!n) return [];
      const h = (n / max) * CHART_HEIGHT;
      y -= h;
      return [{ y, h, outcome: RUN_OUTCOMES[k]!, n }];
    });
    const bin = d.runTimes.from + i;
    return { x: i * w, w, segments, label: `${duration(runEdge(bin))}–${duration(runEdge(bin + 1))}` };
  });
  return { bars, max };
}

/** When the job should end: gq status's estimate (undefined: finished, or not known yet). */
export function eta(d: ReportData): number | undefined {
  const c = d.job.counts;
  if (c.queued + c.running === 0) return undefined;
  return d.etaAt;
}

/** The finished-tasks curve (cumulative, one point per bin end) and the ETA line, in pixels. */
export function finishedCurve(d: ReportData): { points: [number, number][]; eta?: { from: [number, number]; to: [number, number]; at: number }; to: number; from: number } {
  const { from, to: spanEnd } = span(d);
  const at = eta(d);
  const to = at !== undefined ? Math.max(spanEnd, at) : spanEnd;
  const x = (t: number) => ((t - from) / (to - from)) * PLOT_WIDTH;
  const y = (n: number) => CHART_HEIGHT - (n / Math.max(1, d.job.total)) * CHART_HEIGHT;
  const points: [number, number][] = [[x(d.finished.t0), y(0)]];
  let n = 0;
  // A step at the end of each bin that saw tasks finish.
  d.finished.counts.forEach((c, i) => {
    if (!c) return;
    const bx = x(Math.min(to, d.finished.t0 + (i + 1) * d.finished.width));
    points.push([bx, y(n)], [bx, y((n += c))]);
  });
  points.push([x(at !== undefined ? d.now : spanEnd), y(n)]);
  const done = d.job.counts.succeeded + d.job.counts.failed + d.job.counts.cancelled;
  if (at === undefined) return { points, to, from };
  return { points, eta: { from: [x(d.now), y(done)], to: [x(at), y(d.job.total)], at }, to, from };
}
