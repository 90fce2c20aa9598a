/**
 * gq submit: validate everything, then bundle and upload the code once, record the tasks,
 * enqueue them and start workers. Re-running a submit that stopped half way finishes it.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { availableParallelism } from 'node:os';
import {
  deriveJobName,
  keys,
  nowIso,
  parseJobFile,
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
import { existingDir, existingFile, parseInput, relativeInside } from '../paths.js';
import { startWorkers } from '../workers.js';
import { followJob } from '../follow.js';

export interface SubmitArgs {
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
  const tasks = await parseJobFile(a.jobfile);
  const derivedName = !a.name;
  const name = a.name ?? deriveJobName(a.jobfile);
  validateJobName(name);
  const codeDir = existingDir('Code folder', '--code', a.code ?? '.');
  const installFile = a.install ? existingFile('Install script', '--install', a.install, { nonEmpty: true }) : undefined;
  const licenseFile = a.license ? existingFile('Licence file', '--license', a.license, { nonEmpty: true }) : undefined;
  const resultsPath = relativeInside('Results path', '--results', a.results ?? 'results.csv');
  const outputs = (a.output ?? []).map((o) => relativeInside('Output path', '--output', o));
  const inputs = (a.input ?? []).map(parseInput);
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
    await checkInstanceTypes(ctx.config, Object.keys(byType), a.jobfile);
  }
  return { name, derivedName, tasks, codeDir, installFile, licenseFile, resultsPath, outputs, inputs, byType };
}

export async function runSubmit(ctx: CommandContext, a: SubmitArgs): Promise<number> {
  const p = await plan(ctx, a);
  let licenseText: string | undefined;
  if (p.licenseFile) {
    licenseText = readFileSync(p.licenseFile, 'utf8');
    registerSecret(licenseText);
  }
  const backend = await openCliBackend(ctx.config);
  try {
    const existing = await backend.status.getJob(p.name);
    const bundle = await makeBundle(p.codeDir, p.inputs);
    let uploaded = false;
    try {
      const codeKey = keys.bundle(bundle.sha256);
      if (existing && existing.codeKey !== codeKey) {
        throw new UserError(`A job named "${p.name}" already exists with different code.`, {
          hint: 'Choose another --name, or `gq clean` the old job first.',
        });
      }
      if (!(await backend.artifacts.exists(codeKey))) {
        await backend.artifacts.putFile(codeKey, bundle.file);
        uploaded = true;
      }
      const spec = buildSpec(ctx, p, codeKey, backend.name);
      if (p.installFile) await backend.artifacts.putFile(spec.installKey!, p.installFile);
      if (licenseText !== undefined) await backend.artifacts.putBytes(spec.licenseKey!, licenseText);
      const created = await backend.status.createJob(existing ?? spec, p.tasks);
      const job = (await backend.status.getJob(p.name))!;
      await enqueue(backend, job.name, p.tasks, job.visibilitySeconds, job.maxAttempts);
      const workers = await startWorkers(ctx, backend, job, p.byType);
      report(ctx, a, p, { uploaded, bundleBytes: bundle.bytes, created: created.created, existing: created.existing, workers, resumed: !!existing });
    } finally {
      bundle.cleanup();
    }
    if (!a.wait) return 0;
    return await followJob(ctx, backend, p.name, { json: a.json });
  } finally {
    await backend.close();
  }
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
    licenseKey: p.licenseFile ? keys.license(p.name) : undefined,
  };
}

/**
 * One message per task, per instance-type queue. A marker written after a type's messages are all
 * sent lets a re-run skip that type, so a resumed submit does not enqueue twice.
 */
async function enqueue(backend: Backend, job: string, tasks: readonly NewTask[], visibilitySeconds: number, maxAttempts: number): Promise<void> {
  const byType = new Map<string, number[]>();
  for (const t of tasks) {
    const list = byType.get(t.instanceType) ?? [];
    list.push(t.task);
    byType.set(t.instanceType, list);
  }
  for (const [type, nums] of [...byType].sort((x, y) => x[0].localeCompare(y[0]))) {
    const marker = `jobs/${job}/enqueued/${type}`;
    const queue = await backend.queues.ensure(job, type, {
      visibilitySeconds,
      // Generous: re-hiding a message whose task holds a live lease counts as a receive.
      maxReceiveCount: Math.max(20, maxAttempts * 5),
    });
    if (await backend.artifacts.exists(marker)) continue;
    await queue.send(nums);
    await backend.artifacts.putBytes(marker, String(nums.length));
  }
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

export const defaultWorkers = (): number => availableParallelism();
