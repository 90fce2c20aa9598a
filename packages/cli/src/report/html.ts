/**
 * The report as one self-contained HTML file: inline CSS and hand-written SVG drawn from the
 * layout (layout.ts), no script and nothing fetched, so it opens offline and at once. Every
 * attempt bar carries data-outcome, data-task and data-attempt (the browser test reads them).
 */
import { formatUsd } from '@gq/common';
import { BAR_OUTCOMES, LOG_TAIL_LINES, OUTCOME_COLOURS, RUN_OUTCOMES, type ReportData } from './model.js';
import { CHART_HEIGHT, duration, eta, finishedCurve, histogram, LABEL_WIDTH, PLOT_WIDTH, span, timeline, timeTicks, type Tick } from './layout.js';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]!);
/** Pixels to one decimal: enough for the eye, and a small file. */
const n1 = (v: number) => String(Math.round(v * 10) / 10);
const iso = (ms: number | undefined) => (ms === undefined ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC');

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:24px auto;max-width:${LABEL_WIDTH + PLOT_WIDTH + 60}px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.muted{color:#656d76}.summary span{margin-right:18px;white-space:nowrap}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:8px 0}.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
svg{display:block;overflow:visible}svg text{font-size:11px;fill:#444}.axis line{stroke:#d0d7de}.lane-bg{fill:#f6f8fa}
.bar{stroke:#fff;stroke-width:1}.bar.retry{stroke:#111}table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:right}
td:first-child,th:first-child{text-align:left}pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px;margin:4px 0 0}
details{margin:6px 0;border:1px solid #eaeef2;border-radius:4px;padding:6px 10px}summary{cursor:pointer}code{font-size:12px}
`;

function legend(): string {
  return `<div class="legend">${BAR_OUTCOMES.map((o) => `<span><i style="background:${OUTCOME_COLOURS[o]}"></i>${o}</span>`).join('')}<span><i style="background:#fff;border:1px solid #111"></i>outlined: a retry (attempt 2 or later)</span></div>`;
}

function axis(ticks: readonly Tick[], y: number, height: number): string {
  return `<g class="axis">${ticks
    .map((t) => `<line x1="${n1(t.x)}" x2="${n1(t.x)}" y1="0" y2="${n1(height)}"/><text x="${n1(t.x)}" y="${n1(y)}" text-anchor="middle">${esc(t.label)}</text>`)
    .join('')}</g>`;
}

function timelineSvg(d: ReportData): string {
  const t = timeline(d);
  if (!t.rects.length) return '<p class="muted">No attempt has started yet.</p>';
  const h = t.height;
  const lanes = t.lanes
    .map((l, i) => `${i % 2 ? '' : `<rect class="lane-bg" x="0" y="${n1(l.y)}" width="${PLOT_WIDTH}" height="${n1(l.h)}"/>`}<text x="-6" y="${n1(l.y + l.h / 2 + 4)}" text-anchor="end">${l.h >= 9 ? esc(l.label) : ''}<title>${esc(l.title)}</title></text>`)
    .join('');
  const rects = t.rects
    .map((r) => {
      const data = r.task !== undefined ? ` data-task="${r.task}" data-attempt="${r.attempt}"` : ` data-busy="${n1(r.busy ?? 0)}"`;
      const cls = t.mode === 'bars' ? `bar${(r.attempt ?? 1) > 1 ? ' retry' : ''}` : 'bin';
      const op = r.busy !== undefined ? ` fill-opacity="${n1(0.25 + 0.75 * r.busy)}"` : '';
      return `<rect class="${cls}" data-outcome="${r.outcome}"${data} x="${n1(r.x)}" y="${n1(r.y)}" width="${n1(r.w)}" height="${n1(r.h)}" fill="${OUTCOME_COLOURS[r.outcome]}"${op}><title>${esc(r.title)}</title></rect>`;
    })
    .join('');
  const note =
    t.mode === 'density'
      ? `<p class="muted">${d.attempts.toLocaleString('en')} attempts: each worker's lane is drawn as time bins, split in height by the outcomes of the attempts that ran in the bin (by their share of its time), darker when the worker was busier.</p>`
      : '';
  const hidden = t.hiddenLanes ? `<p class="muted">${t.hiddenLanes} more worker(s) not drawn.</p>` : '';
  return `${note}<svg id="timeline" data-mode="${t.mode}" width="${LABEL_WIDTH + PLOT_WIDTH}" height="${n1(h + 24)}" role="img" aria-label="Timeline of attempts per worker"><g transform="translate(${LABEL_WIDTH},0)">${lanes}${axis(t.ticks, h + 16, h)}${rects}</g></svg>${hidden}<p class="muted">Time since the job was submitted (${iso(span(d).from)}).</p>`;
}

function histogramSvg(d: ReportData): string {
  const { bars, max } = histogram(d);
  if (!bars.length) return '<p class="muted">No attempt has ended yet.</p>';
  const every = Math.max(1, Math.ceil(bars.length / 8));
  const body = bars
    .map(
      (b, i) =>
        b.segments
          .map((s) => `<rect data-outcome="${s.outcome}" x="${n1(b.x + 1)}" y="${n1(s.y)}" width="${n1(Math.max(1, b.w - 2))}" height="${n1(s.h)}" fill="${OUTCOME_COLOURS[s.outcome]}"><title>${esc(`${b.label}: ${s.n} ${s.outcome}`)}</title></rect>`)
          .join('') + (i % every === 0 ? `<text x="${n1(b.x + b.w / 2)}" y="${CHART_HEIGHT + 14}" text-anchor="middle">${esc(b.label.split('–')[0]!)}</text>` : ''),
    )
    .join('');
  const s = d.runTimes.succeeded;
  const stats = s.n ? `<p class="muted">${s.n.toLocaleString('en')} succeeded attempts: mean ${duration(s.meanSeconds!)}, longest ${duration(s.maxSeconds!)}. Bins grow by a quarter power of two.</p>` : '';
  return `<svg id="runtimes" width="${LABEL_WIDTH + PLOT_WIDTH}" height="${CHART_HEIGHT + 24}" role="img" aria-label="Run-time distribution"><g transform="translate(${LABEL_WIDTH},0)"><text x="-6" y="10" text-anchor="end">${max} attempts</text><text x="-6" y="${CHART_HEIGHT}" text-anchor="end">0</text><line x1="0" x2="${PLOT_WIDTH}" y1="${CHART_HEIGHT}" y2="${CHART_HEIGHT}" stroke="#d0d7de"/>${body}</g></svg>${stats}<div class="legend">${RUN_OUTCOMES.map((o) => `<span><i style="background:${OUTCOME_COLOURS[o]}"></i>${o}</span>`).join('')}</div>`;
}

function finishedSvg(d: ReportData): string {
  const c = finishedCurve(d);
  const pts = c.points.map(([x, y]) => `${n1(x)},${n1(y)}`).join(' ');
  const etaLine = c.eta
    ? `<line id="eta" x1="${n1(c.eta.from[0])}" y1="${n1(c.eta.from[1])}" x2="${n1(c.eta.to[0])}" y2="${n1(c.eta.to[1])}" stroke="#3b82f6" stroke-width="2" stroke-dasharray="6 4"><title>ETA ${esc(iso(c.eta.at))}</title></line>`
    : '';
  const ticks = timeTicks(c.from, c.to);
  const note = c.eta ? `ETA (dashed), as gq status estimates it: ${iso(c.eta.at)}.` : d.job.counts.queued + d.job.counts.running === 0 ? `The job has ended.` : 'No ETA yet: no task has finished, or no worker is running.';
  return `<svg id="finished" width="${LABEL_WIDTH + PLOT_WIDTH}" height="${CHART_HEIGHT + 24}" role="img" aria-label="Tasks finished over time"><g transform="translate(${LABEL_WIDTH},0)"><text x="-6" y="10" text-anchor="end">${d.job.total.toLocaleString('en')} tasks</text><text x="-6" y="${CHART_HEIGHT}" text-anchor="end">0</text><line x1="0" x2="${PLOT_WIDTH}" y1="0" y2="0" stroke="#d0d7de" stroke-dasharray="2 3"/>${axis(ticks, CHART_HEIGHT + 16, CHART_HEIGHT)}<polyline points="${pts}" fill="none" stroke="#2e9d57" stroke-width="2"/>${etaLine}</g></svg><p class="muted">${note}</p>`;
}

function typesTable(d: ReportData): string {
  const money = (v: number | null | undefined) => (v === undefined ? '—' : v === null ? 'price unknown' : formatUsd(v));
  const rows = d.types
    .map(
      (r) =>
        `<tr><td>${esc(r.instanceType)}</td><td>${r.tasks}</td><td>${r.succeeded}</td><td>${r.failed}</td><td>${r.cancelled}</td><td>${r.open}</td><td>${r.attempts}</td><td>${r.interruptions}</td><td>${r.instances ?? '—'}</td><td>${r.meanTaskSeconds ? duration(r.meanTaskSeconds) : '—'}</td><td>${money(r.spend)}</td></tr>`,
    )
    .join('');
  return `<table id="types"><tr><th>instance type</th><th>tasks</th><th>succeeded</th><th>failed</th><th>cancelled</th><th>queued or running</th><th>attempts</th><th>Spot interruptions</th><th>instances</th><th>mean task</th><th>cost</th></tr>${rows}</table>`;
}

/** Failures shown unfolded (the others fold, one line each). */
const OPEN_FAILURES = 10;

function failures(d: ReportData): string {
  if (!d.failedTotal) return '<p class="muted">No task failed.</p>';
  const items = d.failures
    .map((f, i) => {
      const how = [f.exitCode !== undefined ? `exit ${f.exitCode}` : '', f.signal ?? '', `${f.attempts} attempt(s)`].filter(Boolean).join(', ');
      const tail = f.logTail ?? f.stderrTail;
      const log = tail
        ? `<pre>${esc(tail)}</pre>`
        : `<p class="muted">${esc(f.logError ? `log not read: ${f.logError}` : 'The task printed nothing.')}</p>`;
      return `<details class="failure" data-task="${f.task}"${i < OPEN_FAILURES ? " open" : ""}><summary><b>task ${f.task}</b>: ${esc(f.error ?? 'failed')} <span class="muted">(${esc(how)})</span></summary><code>${esc(f.command)}</code>${log}</details>`;
    })
    .join('');
  const more = d.failedTotal > d.failures.length ? `<p class="muted">and ${d.failedTotal - d.failures.length} more failed task(s): <code>gq results ${esc(d.job.name)} --failed</code> lists them all.</p>` : '';
  return `<p class="muted">The last ${LOG_TAIL_LINES} lines of each failed task's log (of its last attempt).</p>${items}${more}`;
}

export function reportHtml(d: ReportData): string {
  const c = d.job.counts;
  const at = eta(d);
  const ran = d.first !== undefined && d.last !== undefined ? duration((d.last - d.first) / 1000) : '—';
  const spend = d.spend === undefined ? '' : `<span>cost <b>${d.spend === null ? 'price unknown' : formatUsd(d.spend)}</b></span>`;
  const summary = `<p class="summary"><span><b>${c.succeeded}</b> succeeded</span><span><b>${c.failed}</b> failed</span><span><b>${c.cancelled}</b> cancelled</span><span><b>${c.running}</b> running</span><span><b>${c.queued}</b> queued</span><span>of <b>${d.job.total}</b> tasks</span><span><b>${d.attempts}</b> attempts</span><span>ran ${ran}</span>${spend}${at !== undefined ? `<span>ETA ${iso(at)}</span>` : ''}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>gq report: ${esc(d.job.name)}</title><style>${CSS}</style></head>
<body>
<h1>Job ${esc(d.job.name)}${d.job.cancelRequested ? ' — cancelled' : ''}</h1>
<p class="muted">${esc(d.job.backend)} backend · submitted ${iso(Date.parse(d.job.createdAt))} · first attempt ${iso(d.first)} · last end ${iso(d.last)} · up to ${d.job.maxAttempts} attempt(s) per task</p>
${summary}
<h2>Timeline: one lane per worker, one bar per attempt</h2>
${legend()}
${timelineSvg(d)}
<h2>Run times</h2>
${histogramSvg(d)}
<h2>Tasks finished over time</h2>
${finishedSvg(d)}
<h2>Instance types</h2>
${typesTable(d)}
<h2>Failures (${d.failedTotal})</h2>
${failures(d)}
<p class="muted">Made by gq report at ${iso(d.now)}.</p>
</body></html>
`;
}
