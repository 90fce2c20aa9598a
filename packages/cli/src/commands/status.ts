/**
 * gq status [NAME]: all jobs, or one job's counts, workers, progress tags and failures. For one
 * job it reads the job record and the instance records, and only the running tasks that the
 * instances name, and the first few failed tasks it shows: a constant number of reads whatever the
 * size of the job. Task detail (--tasks) is read only when asked for, a page at a time, each page
 * printed before the next is read (100,000 tasks are never all held).
 */
import { formatUsd, INTERRUPTED_DETAIL, JobNotFoundError, sleep, type Backend, type InstanceRecord, type JobRecord, type TaskRecord } from '@gq/common';
import { drained } from '../stdio-flush.js';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { FAILED_TO_START, reconcile } from '../workers.js';
import { fleetReport, reportLines, typeFleetJson, type FleetReport, type TypeFleetJson } from '../fleet-report.js';
import { drawsOn } from '../progress.js';
import { costJson, costLines, costView, taskShare, type CostView } from '../cost-report.js';
import { capLines, capOf } from '../cost-cap.js';
import { etaLines, etaOf, tagsText } from '../live-report.js';

export interface StatusArgs {
  name?: string;
  json?: boolean;
  watch?: boolean;
  tasks?: boolean;
}

const MAX_FAILURES_SHOWN = 10;

function taskJson(t: TaskRecord, cost: CostView) {
  return {
    task: t.task,
    instanceType: t.instanceType,
    command: t.command,
    state: t.state,
    attempts: t.attempts,
    instance: t.instance,
    exitCode: t.exitCode,
    signal: t.signal,
    error: t.error,
    stderrTail: t.stderrTail,
    tags: t.tags,
    startedAt: t.startedAt,
    finishedAt: t.finishedAt,
    interruptions: t.interruptions,
    checkpointKey: t.checkpointKey,
    /** Its attempts, oldest first (instance, type, Spot or not, start, end, outcome, exit code); [] before gq kept them. */
    history: t.history ?? [],
    /** USD: its instance's price × its run time ÷ slots (null: not run, or price unknown). */
    cost: taskShare(cost, t) ?? null,
  };
}

async function runningTasks(backend: Backend, job: JobRecord, instances: InstanceRecord[]): Promise<TaskRecord[]> {
  const nums = new Set<number>();
  for (const i of instances) {
    // A worker with several slots lists them all in `tasks`; older records have only `task`.
    if (i.state === 'BUSY') for (const t of i.tasks ?? (i.task !== undefined ? [i.task] : [])) nums.add(t);
  }
  const out: TaskRecord[] = [];
  for (const n of [...nums].sort((a, b) => a - b)) {
    const t = await backend.status.getTask(job.name, n);
    if (t && t.state === 'RUNNING') out.push(t);
  }
  return out;
}

/** A job's status (--tasks: with each type's counts; the tasks themselves are streamed by printTasks). */
export async function statusJson(backend: Backend, job: JobRecord, withTasks: boolean, fleet?: { report: FleetReport | undefined; bootFailures: number }, region?: string) {
  return (await jobStatus(backend, job, withTasks, fleet, region)).json;
}

/** statusJson and the cost view each task's cost share comes from. */
async function jobStatus(backend: Backend, job: JobRecord, withTasks: boolean, fleet?: { report: FleetReport | undefined; bootFailures: number }, region?: string) {
  const instances = await backend.status.listInstances(job.name);
  const running = await runningTasks(backend, job, instances);
  const cost = costView(job, instances, running, region);
  // The first failures only (the rest are counted in counts.failed): one bounded read.
  const failures = job.counts.failed > 0 ? await backend.status.listTasks(job.name, { states: ['FAILED'], limit: MAX_FAILURES_SHOWN }) : [];
  const typeCounts = withTasks ? await countsByType(backend, job) : undefined;
  const perType: Record<string, { total: number; interruptions: number; movedToOnDemand?: number; counts?: Record<string, number> } & TypeFleetJson> = {};
  for (const [type, total] of Object.entries(job.instanceTypes)) {
    // Instances of the type that left on a Spot interruption notice (their records say so).
    const interruptions = instances.filter((i) => i.instanceType === type && i.detail === INTERRUPTED_DETAIL).length;
    // Tasks moved to on-demand (job/on-demand.ts): a counter of the job, read with it.
    const movedToOnDemand = job.movedToOnDemand?.[type] ?? 0;
    perType[type] = { total, interruptions, ...(movedToOnDemand ? { movedToOnDemand } : {}), ...typeFleetJson(fleet?.report?.types[type], fleet ?? { bootFailures: 0 }) };
  }
  for (const [type, c] of typeCounts ?? []) if (perType[type]) perType[type].counts = c;
  const json = {
    name: job.name,
    backend: job.backend,
    createdAt: job.createdAt,
    total: job.total,
    counts: job.counts,
    cancelRequested: job.cancelRequested,
    ...(job.spotInterruptions ? { spotInterruptions: job.spotInterruptions } : {}),
    instanceTypes: perType,
    instances: instances.map((i) => ({ instance: i.instance, instanceType: i.instanceType, ...(i.pool ? { pool: i.pool } : {}), state: i.state, heartbeatAt: i.heartbeatAt, detail: i.detail })),
    running: running.map((t) => ({ task: t.task, instance: t.instance, attempts: t.attempts, tags: t.tags, tagTimes: t.tagTimes ?? {} })),
    ...etaOf(job, instances, running),
    failures: failures.map((t) => ({ task: t.task, exitCode: t.exitCode, signal: t.signal, error: t.error, attempts: t.attempts, stderrTail: t.stderrTail })),
    cost: { ...costJson(cost), cap: capOf(job, instances, region) ?? null },
  };
  return { json, cost };
}

type StatusJson = Awaited<ReturnType<typeof statusJson>>;

/** Each instance type's task counts by state: the job's own counts when it has one type, else one pass over the task pages (nothing kept). */
async function countsByType(backend: Backend, job: JobRecord): Promise<Map<string, Record<string, number>>> {
  const types = Object.keys(job.instanceTypes);
  if (types.length === 1) return new Map([[types[0]!, { ...job.counts }]]);
  const out = new Map(types.map((t) => [t, { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 } as Record<string, number>]));
  for await (const page of backend.status.taskPages(job.name)) {
    for (const t of page) {
      const c = out.get(t.instanceType);
      if (c) c[t.state.toLowerCase()]!++;
    }
  }
  return out;
}

/**
 * --tasks: every task, a page at a time. JSON: `s` with a `tasks` array after its other keys, each
 * page one line of it (JSON allows the line breaks); text: one line a task.
 */
async function printTasks(ctx: CommandContext, backend: Backend, job: JobRecord, s: StatusJson, cost: CostView, json: boolean): Promise<void> {
  if (json) ctx.io.out(`${JSON.stringify(s).slice(0, -1)},"tasks":[`);
  let first = true;
  for await (const page of backend.status.taskPages(job.name)) {
    if (page.length === 0) continue;
    const tasks = page.map((t) => taskJson(t, cost));
    if (json) ctx.io.out((first ? '' : ',') + tasks.map((t) => JSON.stringify(t)).join(','));
    else for (const t of tasks) ctx.io.out(`    ${t.task}\t${t.state}\t${t.instanceType}\t${t.cost === null ? '-' : formatUsd(t.cost)}\t${t.command}`);
    first = false;
    // A slow reader (stdout on a pipe is written asynchronously): wait rather than buffer the job.
    await drained();
  }
  if (json) ctx.io.out(']}');
}

function renderJob(s: StatusJson): string[] {
  const c = s.counts;
  const done = c.succeeded + c.failed + c.cancelled;
  const lines = [
    `Job ${s.name} (${s.backend}, submitted ${s.createdAt})${s.cancelRequested ? ' — CANCELLED' : ''}`,
    `  ${done}/${s.total} done: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled; ${c.running} running, ${c.queued} queued`,
  ];
  lines.push(...etaLines(s), '  Instance types:');
  for (const [type, v] of Object.entries(s.instanceTypes)) {
    const n = s.instances.filter((i) => i.instanceType === type && i.state !== 'STOPPED').length;
    const detail = v.counts ? ` (${Object.entries(v.counts).filter(([, x]) => x).map(([k, x]) => `${x} ${k}`).join(', ')})` : '';
    lines.push(`    ${type}: ${v.total} tasks${detail}, ${n} worker(s) active${v.interruptions ? `, ${v.interruptions} Spot interruption(s)` : ''}`);
    if (v.movedToOnDemand) lines.push(`      ${v.movedToOnDemand} task(s) moved to on-demand after ${s.spotInterruptions} Spot interruptions`);
    lines.push(...reportLines(v));
  }
  lines.push(...costLines(s.cost));
  if (s.cost.cap) lines.push(...capLines(s.name, s.cost.cap, c.queued));
  const active = s.instances.filter((i) => i.state !== 'STOPPED' && !FAILED_TO_START.has(i.state));
  if (active.length) {
    lines.push('  Workers:');
    for (const i of active.slice(0, 20)) {
      const age = Math.max(0, Math.round((Date.now() - Date.parse(i.heartbeatAt)) / 1000));
      lines.push(`    ${i.instance} (${i.instanceType}${i.pool ? `, ${i.pool}` : ''}): ${i.state}${i.detail ? ` ${i.detail}` : ''}, seen ${age}s ago`);
    }
    if (active.length > 20) lines.push(`    ... and ${active.length - 20} more`);
  }
  const failedInstall = s.instances.filter((i) => FAILED_TO_START.has(i.state));
  for (const i of failedInstall) {
    const what = i.state === 'BOOT_FAILED' ? 'Boot' : 'Install';
    lines.push(`  ${what} failed on ${i.instance} (${i.instanceType}): ${i.detail ?? 'see its log'}`);
    lines.push(`    read its ${what.toLowerCase()} log with: gq logs ${s.name} --instance ${i.instance}`);
  }
  if (s.running.length) {
    lines.push('  Running:');
    for (const t of s.running) {
      const tags = tagsText(t.tags, t.tagTimes);
      lines.push(`    task ${t.task} on ${t.instance ?? '?'} (attempt ${t.attempts})${tags ? `  ${tags}` : ''}`);
    }
  }
  if (s.failures.length) {
    lines.push('  Failed:');
    for (const f of s.failures.slice(0, MAX_FAILURES_SHOWN)) {
      const code = f.exitCode !== undefined ? `exit code ${f.exitCode}` : f.signal ? `signal ${f.signal}` : 'no exit code';
      lines.push(`    task ${f.task}: ${code} after ${f.attempts} attempt(s): ${f.error ?? ''}`);
      const tail = (f.stderrTail ?? '').split('\n').filter(Boolean).slice(-2);
      for (const l of tail) lines.push(`      | ${l}`);
    }
    if (c.failed > s.failures.length) lines.push(`    ... and ${c.failed - s.failures.length} more (gq status ${s.name} --tasks --json)`);
    lines.push(`  Logs: gq logs ${s.name} TASK    Rerun failed: gq retry ${s.name} --failed`);
  }
  return lines;
}

function renderList(jobs: JobRecord[]): string[] {
  if (!jobs.length) return ['No jobs yet. Submit one with: gq submit jobdetails.csv --code DIR'];
  const rows = [['NAME', 'BACKEND', 'SUBMITTED', 'TOTAL', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']];
  for (const j of jobs) {
    const c = j.counts;
    rows.push([j.name, j.backend, j.createdAt.slice(0, 19).replace('T', ' '), j.total, c.queued, c.running, c.succeeded, c.failed, c.cancelled].map(String));
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd());
}

export async function runStatus(ctx: CommandContext, a: StatusArgs): Promise<number> {
  const backend = await openCliBackend(ctx.config);
  try {
    for (;;) {
      if (!a.name) {
        const jobs = await backend.status.listJobs();
        if (a.json) ctx.io.out(JSON.stringify(jobs.map((j) => ({ name: j.name, backend: j.backend, createdAt: j.createdAt, total: j.total, counts: j.counts }))));
        else for (const l of renderList(jobs)) ctx.io.out(l);
        if (!a.watch) return 0;
      } else {
        let job = await backend.status.getJob(a.name);
        if (!job) throw new JobNotFoundError(a.name);
        // Why instances do not start, and boot loops stopped (before reconcile, which then does not restart them).
        const report = await fleetReport(ctx, backend, job);
        // Reconciling may change the job (a dead-lettered task recorded as failed): show it as it is now.
        if ((await reconcile(ctx, backend, job, report?.groups)).changed) job = (await backend.status.getJob(a.name)) ?? job;
        const { json: s, cost } = await jobStatus(backend, job, !!a.tasks, { report, bootFailures: ctx.config.bootFailures }, await regionOf(ctx));
        if (a.json && !a.tasks) ctx.io.out(JSON.stringify(s));
        else if (!a.json) {
          if (a.watch && drawsOn(process.stdout)) process.stdout.write('\x1b[2J\x1b[H');
          for (const l of renderJob(s)) ctx.io.out(l);
        }
        if (a.tasks) await printTasks(ctx, backend, job, s, cost, !!a.json);
        if (!a.watch || job.counts.queued + job.counts.running === 0) return 0;
      }
      await sleep(2000);
    }
  } finally {
    await backend.close();
  }
}

/** The AWS region, for the price table (none locally: local workers cost nothing). */
export async function regionOf(ctx: CommandContext): Promise<string | undefined> {
  if (ctx.config.backend !== 'aws') return undefined;
  const { findRegion } = await import('../aws/region.js');
  return (await findRegion(ctx.config))?.region;
}
