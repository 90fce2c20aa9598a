/**
 * What `gq status` says of a job while it runs: the ETA (common/src/cost/eta.ts over the records
 * status reads anyway: the job, its instance records, its running tasks, the queued tasks of each
 * type shared out as the cost estimate does), as the `eta` object of `--json` and its line; and
 * the running tasks' progress tags with how long ago each was set.
 */
import { jobEta, slotsOf, type InstanceRecord, type JobRecord, type TaskRecord, type TypeEta } from '@gq/common';
import { workOf } from './cost-report.js';

export interface EtaJson {
  seconds: number;
  /** ISO time. */
  at: string;
  /** In words: the finished tasks, their mean run time and the slots it rests on. */
  basis: string;
  finishedTasks: number;
  meanTaskSeconds: number;
  slots: number;
}

const WHY: Record<Extract<TypeEta, { known: false }>['why'], string> = {
  'no-task-finished': 'no task has finished yet',
  'no-worker': 'no worker is running',
};

/** `eta` (null: cannot be known), and why not when it cannot. */
export function etaOf(job: JobRecord, instances: readonly InstanceRecord[], running: readonly TaskRecord[], now = Date.now()): { eta: EtaJson | null; etaUnknown?: string } {
  const types = Object.keys(job.instanceTypes);
  const { eta, perType } = jobEta({ instances, now, types, work: workOf(job, instances, running, now), slots: (t) => slotsOf(job, t) });
  if (!eta) {
    const why = perType.filter((t) => !t.known).map((t) => `${WHY[t.why]}${types.length > 1 ? ` for ${t.instanceType}` : ''}`);
    return { eta: null, etaUnknown: why.join('; ') };
  }
  const mean = Math.round(eta.meanTaskSeconds);
  const basis = `from ${eta.finishedTasks} finished task(s) averaging ${mean} s on ${eta.slots} slot(s)`;
  return {
    eta: { seconds: Math.round(eta.seconds), at: eta.at, basis, finishedTasks: eta.finishedTasks, meanTaskSeconds: Math.round(eta.meanTaskSeconds * 10) / 10, slots: eta.slots },
  };
}

/** "45 s", "14 min", "2.5 h", "3.1 days". */
export function roughDuration(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Number((s / 3600).toFixed(1))} h`;
  return `${Number((s / 86400).toFixed(1))} days`;
}

/** The ETA line of `gq status` (none once every task is final). */
export function etaLines(s: { eta: EtaJson | null; etaUnknown?: string; counts: { queued: number; running: number } }, now = Date.now()): string[] {
  if (s.counts.queued + s.counts.running === 0) return [];
  if (!s.eta) return [`  ETA: not known yet (${s.etaUnknown ?? 'no estimate'})`];
  // Tasks left, none expected to take longer: those running have run past the mean.
  if (s.eta.seconds < 1) return [`  ETA: due now (the running task(s) have run past the mean), ${s.eta.basis}`];
  const at = new Date(s.eta.at);
  const iso = at.toISOString();
  const when = at.getTime() - now < 20 * 3600 * 1000 ? `${iso.slice(11, 16)} UTC` : `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  return [`  ETA: ~${roughDuration(s.eta.seconds)} (at ${when}), ${s.eta.basis}`];
}

/** "percent_complete=40 (12 s ago) stage=fit (3 min ago)"; a tag recorded without its time shows none. */
export function tagsText(tags: Record<string, string> | undefined, times: Record<string, string> | undefined, now = Date.now()): string {
  return Object.entries(tags ?? {})
    .map(([k, v]) => {
      const at = times?.[k] ? Date.parse(times[k]) : NaN;
      return Number.isFinite(at) ? `${k}=${v} (${roughDuration(Math.max(0, (now - at) / 1000))} ago)` : `${k}=${v}`;
    })
    .join(' ');
}
