/**
 * What `gq report` reads: the job's tasks page by page into the aggregation (aggregate.ts, so no
 * more than its aggregates is held), its instance records (lane labels, costs through
 * cost-report.ts's costView), and the tail of the log of the first MAX_FAILURES failed tasks
 * (its last LOG_TAIL_BYTES only: a log of gigabytes costs no more than a short one).
 */
import { keys, type Backend, type JobRecord, type TaskRecord } from '@gq/common';
import { etaOf } from '../live-report.js';
import { plainRelativeKey } from '@gq/common/safe-path';
import { costView } from '../cost-report.js';
import { ReportBuilder } from './aggregate.js';
import { LOG_TAIL_LINES, type Failure, type ReportData } from './model.js';

/** Bytes read from the end of each log: 20 lines of up to 3 KB each, whatever the log's size. */
export const LOG_TAIL_BYTES = 64 * 1024;

/**
 * The last `lines` lines of `text` (a trailing newline does not count as a line). `cut`: the
 * text is the end of a longer log, so its first line may be a part of one (dropped, unless it
 * is the only one).
 */
export function tailLines(text: string, lines = LOG_TAIL_LINES, cut = false): string {
  const all = text.replace(/\n$/, '').split('\n');
  if (cut && all.length > 1) all.shift();
  return all.slice(-lines).join('\n');
}

/** Logs read at once. */
const LOG_READS = 8;

async function readTail(backend: Backend, job: string, f: Failure): Promise<void> {
  if (!f.logKey) return;
  // Only the task's own log (as gq logs): a record naming another key was not written by gq.
  const own = keys.taskPrefix(job, f.task);
  if (!f.logKey.startsWith(own) || !plainRelativeKey(f.logKey.slice(own.length))) {
    f.logError = `the record names ${JSON.stringify(f.logKey)}, which is not one of the task's own files`;
    return;
  }
  try {
    const tail = await backend.artifacts.getTail(f.logKey, LOG_TAIL_BYTES);
    f.logTail = tailLines(tail.toString('utf8'), LOG_TAIL_LINES, tail.length >= LOG_TAIL_BYTES);
  } catch (e) {
    f.logError = (e as Error)?.message ?? String(e);
  }
}

export async function gatherReport(backend: Backend, job: JobRecord, opts: { region?: string; now?: number } = {}): Promise<ReportData> {
  const now = opts.now ?? Date.now();
  const b = new ReportBuilder(job, now);
  const running: TaskRecord[] = []; // a few: one per busy slot
  for await (const page of backend.status.taskPages(job.name)) {
    b.add(page);
    for (const t of page) if (t.state === 'RUNNING') running.push(t);
  }
  const d = b.finish();
  const instances = await backend.status.listInstances(job.name);
  // The ETA gq status shows, from the same figures.
  const { eta: est } = etaOf(job, instances, running, now);
  if (est) d.etaAt = Date.parse(est.at);
  const byId = new Map(instances.map((i) => [i.instance, i]));
  for (const l of d.lanes) {
    const r = byId.get(l.id);
    l.instanceType ??= r?.instanceType;
    l.lifecycle ??= r?.lifecycle;
  }
  const cost = costView(job, instances, [], opts.region, now);
  for (const row of d.types) {
    const c = cost.cost.perType.find((t) => t.instanceType === row.instanceType);
    if (!c) continue;
    row.instances = c.instances;
    row.spend = c.priceUnknown > 0 && c.spend === 0 ? null : Math.round(c.spend * 100) / 100;
    row.meanTaskSeconds = c.meanTaskSeconds ?? null;
  }
  d.spend = cost.cost.priceUnknown > 0 && cost.cost.spend === 0 ? null : Math.round(cost.cost.spend * 100) / 100;
  const queue = [...d.failures];
  await Promise.all(
    Array.from({ length: Math.min(LOG_READS, queue.length) }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) await readTail(backend, job.name, f);
    }),
  );
  return d;
}
