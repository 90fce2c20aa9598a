/**
 * gq submit: validate everything, then bundle and upload the code once, record the tasks,
 * enqueue them and start workers. Re-running a submit that stopped half way finishes it.
 */
import { readFileSync, statSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { basename } from 'node:path';
import {
  deriveJobName,
  jobSlots,
  keys,
  nowIso,
  parseJobFileWithLines,
  registerSecret,
  UserError,
  validateJobName,
  type Backend,
  type InputMapping,
  type JobSpec,
  type NewTask,
} from '@gq/common';
import type { CommandContext } from '../context.js';
import { openCliBackend } from '../backend.js';
import { makeBundle } from '../bundle.js';
import { checkKeyRoom, existingDir, existingFile, parseInput, relativeInside } from '../paths.js';
import { startWorkers } from '../workers.js';
import { followJob } from '../follow.js';
import { pausePoint } from '../faults.js';
import { enqueueTasks } from '../enqueue.js';
import { drawsOn, progressBar } from '../progress.js';
import { checkCap, jobPlan, planLines, type EstimateArgs } from './dry-run.js';

export interface SubmitArgs extends EstimateArgs {
  /** Check and print the plan (and a cost estimate); create nothing. */
  dryRun?: boolean;
  jobfile: string;
  name?: string;
  code?: string;
  install?: string;
  results?: string;
  input?: string[];
  output?: string[];
  license?: string;
  wait?: boolean;
  json?: boolean;
  /** With wait: write the HTML report here when the job ends ('' : the default file). */
  report?: string;
}

/** Everything checked, nothing written yet. */
interface Plan {
  name: string;
  derivedName: boolean;
  tasks: NewTask[];
  codeDir: string;
  installFile?: string;
  licenseFile?: string;
  resultsPath: string;
  outputs: string[];
  inputs: InputMapping[];
  byType: Record<string, number>;
}

async function plan(ctx: CommandContext, a: SubmitArgs): Promise<Plan> {
  const job = await parseJobFileWithLines(a.jobfile, { backend: ctx.config.backend });
  const { tasks } = job;
  const derivedName = !a.name;
  const name = a.name ?? deriveJobName(a.jobfile);
  validateJobName(name);
  const codeDir = existingDir('Code folder', '--code', a.code ?? '.');
  const installFile = a.install ? existingFile('Install script', '--install', a.install, { nonEmpty: true }) : undefined;
  const licenseFile = a.license ? licenceFile(a.license) : undefined;
  const resultsPath = relativeInside('Results path', '--results', a.results ?? 'results.csv');
  const outputs = (a.output ?? []).map((o) => relativeInside('Output path', '--output', o));
  const inputs = (a.input ?? []).map(parseInput);
  const lastTask = tasks.reduce((m, t) => Math.max(m, t.task), 0);
  checkKeyRoom(name, lastTask, [{ flag: '--results', path: resultsPath }, ...outputs.map((path) => ({ flag: '--output', path }))]);
  const byType: Record<string, number> = {};
  for (const t of tasks) byType[t.instanceType] = (byType[t.instanceType] ?? 0) + 1;
  if (ctx.config.backend === 'aws') {
    const bad = Object.keys(byType).filter((t) => t === 'local');
    if (bad.length) {
      throw new UserError('Instance type "local" only exists on the local backend.', {
        hint: 'Use EC2 instance types (for example t3.small) in the job file for --backend aws.',
      });
    }
    const { checkInstanceTypes } = await import('../aws/instance-types.js');
    await checkInstanceTypes(ctx.config, job, a.jobfile);
  }
  return { name, derivedName, tasks, codeDir, installFile, licenseFile, resultsPath, outputs, inputs, byType };
}

/**
 * How long a stored licence lives (its `expiresAt`, the status table's TTL attribute): it is
 * deleted as soon as the job is finished or cleaned; this bounds its life when neither happens
 * (a job left running, a machine that never runs gq again). A job whose agents start after
 * that needs `gq submit` (same command: it resumes) or `gq retry --license` to store it again.
 */
export const LICENCE_LIFETIME_SECONDS = 30 * 24 * 3600;

export function licenceExpiry(now: number = Date.now()): number {
  return Math.floor(now / 1000) + LICENCE_LIFETIME_SECONDS;
}

/** Largest licence file accepted: a gurobi.lic is a few hundred bytes. */
const MAX_LICENCE_BYTES = 64 * 1024;

/** --license: an existing, non-empty, small text file (checked before anything is written). */
export function licenceFile(p: string): string {
  const abs = existingFile('Licence file', '--license', p, { nonEmpty: true });
  const size = statSync(abs).size;
  if (size > MAX_LICENCE_BYTES) {
    throw new UserError(`Licence file ${p} is ${size.toLocaleString('en-US')} bytes; a Gurobi licence file is a few hundred bytes (at most ${MAX_LICENCE_BYTES.toLocaleString('en-US')} accepted).`, {
      hint: 'Give --license the gurobi.lic file (from the Gurobi web licence manager), not an installer or archive.',
    });
  }
  const bytes = readFileSync(abs);
  if (bytes.includes(0) || !isUtf8(bytes)) {
    throw new UserError(`Licence file ${p} is not a text file.`, {
      hint: 'Give --license the gurobi.lic text file (lines such as WLSACCESSID=... or TYPE=...).',
    });
  }
  if (!bytes.toString('utf8').trim()) {
    throw new UserError(`Licence file ${p} has only blank lines.`, { hint: 'Put the licence in it, or drop --license.' });
  }
  return abs;
}

export async function runSubmit(ctx: CommandContext, a: SubmitArgs): Promise<number> {
  const p = await plan(ctx, a);
  if (a.dryRun || ctx.config.maxCost !== undefined || a.estimateRuntime !== undefined || a.like !== undefined) {
    const jp = await jobPlan(ctx, { name: p.name, byType: p.byType, total: p.tasks.length }, a);
    if (a.dryRun) {
      if (a.json) ctx.io.out(JSON.stringify({ dryRun: true, ...jp, maxCost: ctx.config.maxCost ?? null }));
      else for (const l of planLines(jp, ctx.config.maxCost)) ctx.io.out(l);
      return 0;
    }
    checkCap(jp, ctx.config.maxCost);
  }
  let licenseText: string | undefined;
  if (p.licenseFile) {
    licenseText = readFileSync(p.licenseFile, 'utf8');
    registerSecret(licenseText);
  }
  ctx.log.debug(
    { job: p.name, tasks: p.tasks.length, instanceTypes: p.byType, codeDir: p.codeDir, installFile: p.installFile, licenceGiven: !!p.licenseFile, resultsPath: p.resultsPath, outputs: p.outputs, inputs: p.inputs },
    'job checked; nothing written yet',
  );
  const backend = await openCliBackend(ctx.config);
  ctx.log.debug({ backend: backend.name }, 'backend opened');
  const interrupt = onInterrupt(ctx, p.name);
  let interrupted = false;
  try {
    // A signal ends the command at once with its exit code (the CLI exits on it); the steps still
    // under way are abandoned, as a repeated submit finishes them.
    return await Promise.race([
      submitAndFollow(ctx, a, p, backend, licenseText, interrupt),
      interrupt.signalled.then((code) => {
        interrupted = true;
        return code;
      }),
    ]);
  } finally {
    interrupt.off();
    // Not after a signal: the abandoned steps may still be using the backend.
    if (!interrupted) await backend.close();
  }
}

async function submitAndFollow(ctx: CommandContext, a: SubmitArgs, p: Plan, backend: Backend, licenseText: string | undefined, interrupt: Interrupt): Promise<number> {
  const existing = await backend.status.getJob(p.name);
  const bundle = await makeBundle(p.codeDir, p.inputs);
  interrupt.cleanup = () => bundle.cleanup();
  let uploaded = false;
  try {
    const codeKey = keys.bundle(bundle.sha256);
    if (existing && existing.codeKey !== codeKey) {
      throw new UserError(`A job named "${p.name}" already exists with different code.`, {
        hint: 'Choose another --name, or `gq clean` the old job first.',
      });
    }
    if (!(await backend.artifacts.exists(codeKey))) {
      const bar = progressBar('Uploading code', bundle.bytes, 'bytes');
      await backend.artifacts.putFile(codeKey, bundle.file, (n) => bar.update(n)).finally(() => bar.stop());
      uploaded = true;
    }
    ctx.log.debug({ codeKey, bytes: bundle.bytes, uploaded }, 'code bundle');
    const spec = buildSpec(ctx, p, codeKey, backend.name);
    if (p.installFile) await backend.artifacts.putFile(spec.installKey!, p.installFile);
    if (licenseText !== undefined) {
      const expiresAt = licenceExpiry();
      await backend.secrets.putLicence(p.name, licenseText, expiresAt);
      ctx.log.debug({ job: p.name, bytes: Buffer.byteLength(licenseText), expiresAt }, 'licence stored');
    }
    const created = await backend.status.createJob(existing ?? spec, p.tasks);
    ctx.log.debug({ job: p.name, created: created.created, existing: created.existing }, 'tasks recorded');
    const job = (await backend.status.getJob(p.name))!;
    await pausePoint('before-enqueue');
    // One marker per type once its messages are sent: a resumed submit does not enqueue twice.
    await enqueueTasks(ctx, backend, job, p.tasks, { resumable: true, queueNameWaitMs: 0 });
    ctx.log.debug({ job: job.name, instanceTypes: p.byType }, 'tasks enqueued');
    await pausePoint('before-workers');
    const workers = await startWorkers(ctx, backend, job, p.byType);
    ctx.log.debug({ job: job.name, workers }, 'workers started');
    report(ctx, a, p, { uploaded, bundleBytes: bundle.bytes, created: created.created, existing: created.existing, workers, resumed: !!existing });
  } finally {
    bundle.cleanup();
    interrupt.cleanup = undefined;
  }
  interrupt.phase = 'following';
  if (!a.wait) return 0;
  const code = await followJob(ctx, backend, p.name, { json: a.json });
  if (a.report !== undefined) {
    const { defaultReportFile, writeReport } = await import('./report.js');
    ctx.io.err(`Report: ${(await writeReport(ctx, backend, p.name, a.report || defaultReportFile(p.name))).file}`);
  }
  return code;
}

interface Interrupt {
  phase: 'submitting' | 'following';
  /** Run (synchronously) when a signal arrives: removes the temporary bundle. */
  cleanup?: () => void;
  off(): void;
  /** Settles on the first SIGINT or SIGTERM with the exit code, 128 + the signal's number. */
  signalled: Promise<number>;
}

/**
 * Ctrl-C (or SIGTERM) during a submit: say what state the job is in and how to go on; the
 * command then ends with 128 + the signal's number as a shell expects. Every step of a submit can
 * be repeated, so while submitting the answer is always "run the same command again"; while
 * following (--wait) the job is complete and runs on.
 */
function onInterrupt(ctx: CommandContext, name: string): Interrupt {
  let settle!: (code: number) => void;
  const state: Interrupt = {
    phase: 'submitting',
    off: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
    signalled: new Promise<number>((resolve) => (settle = resolve)),
  };
  function handler(sig: NodeJS.Signals): void {
    state.off();
    state.cleanup?.();
    if (drawsOn(process.stderr)) process.stderr.write('\x1b[?25h'); // the progress bar hides the cursor
    ctx.io.err(
      state.phase === 'submitting'
        ? `\ngq: interrupted: job ${name} is not completely submitted. Nothing is lost: run the same gq submit command ` +
            'again to finish it (tasks already recorded or queued are not duplicated).'
        : `\ngq: stopped following job ${name}; it keeps running. Follow it again with: gq status ${name} --watch`,
    );
    settle(128 + (sig === 'SIGINT' ? 2 : 15));
  }
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return state;
}

function buildSpec(ctx: CommandContext, p: Plan, codeKey: string, backend: 'local' | 'aws'): JobSpec {
  const c = ctx.config;
  return {
    name: p.name,
    backend,
    createdAt: nowIso(),
    total: p.tasks.length,
    instanceTypes: p.byType,
    codeKey,
    installKey: p.installFile ? keys.install(p.name) : undefined,
    resultsPath: p.resultsPath,
    outputs: p.outputs,
    maxAttempts: c.retries + 1,
    timeoutSeconds: c.timeout,
    installTimeoutSeconds: c.installTimeout,
    installAttempts: c.installRetries + 1,
    visibilitySeconds: Math.max(2, Math.round(c.visibility)),
    idleSeconds: c.idle ?? (backend === 'local' ? 3 : 120),
    unreachableSeconds: c.unreachableTimeout,
    licenseKey: p.licenseFile ? keys.license(p.name) : undefined,
    slots: jobSlots(c.slots, Object.keys(p.byType)),
    ...(c.maxCost !== undefined ? { maxCost: c.maxCost } : {}),
    // The on-demand fallback (job/on-demand.ts): Spot jobs only.
    ...(backend === 'aws' && c.spot && c.spotInterruptions > 0 ? { spotInterruptions: c.spotInterruptions } : {}),
    ...(backend === 'aws' ? { market: c.spot ? 'spot' : 'on-demand' } : {}),
  };
}

function report(
  ctx: CommandContext,
  a: SubmitArgs,
  p: Plan,
  r: { uploaded: boolean; bundleBytes: number; created: number; existing: number; workers: Record<string, number>; resumed: boolean },
): void {
  if (a.json) {
    if (!a.wait) {
      ctx.io.out(
        JSON.stringify({
          name: p.name,
          backend: ctx.config.backend,
          total: p.tasks.length,
          created: r.created,
          existing: r.existing,
          codeUploaded: r.uploaded,
          workers: r.workers,
        }),
      );
    }
    return;
  }
  if (p.derivedName) ctx.io.err(`Job name: ${p.name} (derived from ${basename(a.jobfile)}; use --name to choose one)`);
  ctx.io.err(
    `${r.resumed ? 'Resumed' : 'Submitted'} job ${p.name} on the ${ctx.config.backend} backend: ${p.tasks.length} tasks` +
      (r.existing ? ` (${r.existing} were already recorded)` : '') +
      `, code bundle ${(r.bundleBytes / 1024).toFixed(1)} KiB ${r.uploaded ? 'uploaded' : 'already stored'}.`,
  );
  for (const [type, n] of Object.entries(r.workers)) ctx.io.err(`  ${type}: ${p.byType[type]} tasks, ${n} worker(s) started`);
  if (!a.wait) ctx.io.err(`Follow it with: gq status ${p.name} --watch`);
}
