/**
 * gq report NAME [--out FILE]: one self-contained HTML file about a job (report/: the timeline of
 * every attempt per worker, run times, tasks finished over time with the ETA, failures with the
 * tail of their logs, instance types and cost). Reads the tasks page by page; works while the job
 * runs and after it ended.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { JobNotFoundError, type Backend } from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { gatherReport } from '../report/read.js';
import { reportHtml } from '../report/html.js';
import { regionOf } from './status.js';

export interface ReportArgs {
  name: string;
  out?: string;
  json?: boolean;
}

/** Where the report goes by default: beside what `gq results` writes. */
export const defaultReportFile = (job: string) => `results/${job}/report.html`;

/** Write the report of `job` to `file` (through a temporary file: never half a report). */
export async function writeReport(ctx: CommandContext, backend: Backend, job: string, file: string): Promise<{ file: string; bytes: number; tasks: number; attempts: number }> {
  const rec = await backend.status.getJob(job);
  if (!rec) throw new JobNotFoundError(job);
  const data = await gatherReport(backend, rec, { region: await regionOf(ctx) });
  const html = reportHtml(data);
  const path = resolve(file);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, html);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { file: path, bytes: Buffer.byteLength(html), tasks: rec.total, attempts: data.attempts };
}

export async function runReport(ctx: CommandContext, a: ReportArgs): Promise<number> {
  const backend = await openCliBackend(ctx.config);
  try {
    const r = await writeReport(ctx, backend, a.name, a.out ?? defaultReportFile(a.name));
    if (a.json) ctx.io.out(JSON.stringify(r));
    else ctx.io.out(`Report of ${a.name} (${r.tasks} tasks, ${r.attempts} attempts): ${r.file}`);
    return 0;
  } finally {
    await backend.close();
  }
}
