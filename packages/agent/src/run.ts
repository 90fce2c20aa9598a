/**
 * `gq-agent run`: work out who and where this worker is, open the backend, run the Agent, handle
 * signals (first: drain; second: stop and give the task back) and, on EC2, Spot interruptions.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createLogger, localWorkdir, taskBaseEnv, UserError, type Backend, type Logger, type Pool } from '@gq/common';
import { Agent } from './loop.js';
import { openBackend, type AgentContext } from './backend.js';
import { workspaceAt, writeAgentWrapper } from './workspace.js';
import { resolveTaskUser } from './task-user.js';
import { setFaultJob } from './faults.js';
import type { BillingFacts } from './usage.js';

export interface WorkerArgs {
  backend: 'local' | 'aws';
  job: string;
  instanceType?: string;
  instance?: string;
  home?: string;
  region?: string;
  bucket?: string;
  table?: string;
  workdir?: string;
  /** Run tasks as this user (see task-user.ts). */
  taskUser?: string;
  taskAwsAccess?: boolean;
  /** Serve the type's on-demand queue (a Spot job's fallback group: job/on-demand.ts). */
  onDemand?: boolean;
  /** GB of this instance's root EBS volume (EC2; from the UserData), for the cost figures. */
  rootVolumeGb?: number;
}

/** How this very program is started again (for the tasks' `gq-agent` wrapper and local workers). */
function selfCommand(): string[] {
  return [process.execPath, process.argv[1]!];
}

interface Identity {
  ctx: AgentContext;
  instance: string;
  instanceType: string;
  workdir: string;
  spotWatch?: () => Promise<boolean>;
  billing?: (log: Logger) => Promise<BillingFacts>;
}

async function identify(a: WorkerArgs): Promise<Identity> {
  if (a.backend === 'local') {
    if (!a.home) throw new UserError('--home is required with --backend local.');
    const instance = a.instance ?? `local-${hostname()}-${process.pid}`;
    if (!a.instanceType) throw new UserError('--instance-type is required with --backend local.');
    return {
      ctx: { backend: 'local', home: a.home },
      instance,
      instanceType: a.instanceType,
      workdir: a.workdir ?? localWorkdir(a.home, a.job, instance),
    };
  }
  const { createImds } = await import('./aws/imds.js');
  const imds = createImds();
  const region = a.region ?? (await imds.region());
  if (!a.bucket || !a.table) throw new UserError('--bucket and --table are required with --backend aws.');
  // The SDK's default credential chain reads the instance role from the same metadata service.
  process.env.AWS_REGION ??= region;
  return {
    ctx: { backend: 'aws', region, bucket: a.bucket, table: a.table },
    instance: a.instance ?? (await imds.instanceId()),
    instanceType: a.instanceType ?? (await imds.instanceType()),
    workdir: a.workdir ?? join(process.env.HOME ?? '/root', 'gq', 'work'),
    spotWatch: async () => (await imds.spotInstanceAction()) !== undefined,
    billing: async (log) => (await import('./aws/price.js')).billingFacts(imds, region, a.instanceType ?? (await imds.instanceType()), (err, what) => log.warn({ err }, what)),
  };
}

export async function runWorker(a: WorkerArgs): Promise<number> {
  setFaultJob(a.job);
  const id = await identify(a);
  const taskUser = a.taskUser ? resolveTaskUser(a.taskUser) : undefined;
  const log = createLogger({ base: { job: a.job, instance: id.instance } });
  let backend: Backend | undefined;
  const cleanups: Array<() => void> = [];
  try {
    backend = await openBackend(id.ctx, selfCommand());
    const pool: Pool = a.onDemand ? 'on-demand' : 'main';
    const queue = await backend.queues.open(a.job, id.instanceType, pool);
    const ws = workspaceAt(id.workdir);
    writeAgentWrapper(ws, selfCommand());
    const agent = new Agent({
      backend,
      queue,
      ws,
      job: a.job,
      instance: id.instance,
      instanceType: id.instanceType,
      ...(pool === 'on-demand' ? { pool } : {}),
      log,
      // What the worker was started with, with NODE_EXTRA_CA_CERTS back for the tasks (worker-env.ts).
      baseEnv: taskBaseEnv(process.env),
      contextJson: JSON.stringify(id.ctx),
      taskUser,
      taskAwsAccess: a.taskAwsAccess ?? false,
      billing: { ...(await billingOf(id, log)), ...(id.billing && a.rootVolumeGb ? { volumeGb: a.rootVolumeGb } : {}) },
      ...(id.ctx.backend === 'aws' ? { tagInstance: instanceTagger(id.ctx.region, id.instance), liveLog: true } : {}),
    });

    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        log.info({ signal: sig }, 'stopping: no new tasks; the running task may finish');
        agent.drain();
      } else {
        log.warn({ signal: sig }, 'stopping now: the running task is stopped and given back');
        agent.interrupt('shutdown');
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    cleanups.push(() => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    });

    if (id.spotWatch) {
      const watch = id.spotWatch;
      const timer = setInterval(() => {
        watch().then(
          (announced) => {
            if (!announced) return;
            log.warn('Spot interruption announced: releasing the running task');
            clearInterval(timer);
            agent.interrupt('release');
          },
          () => undefined,
        );
      }, 2000);
      timer.unref();
      cleanups.push(() => clearInterval(timer));
    }

    const r = await agent.run();
    log.info({ tasksRun: r.tasksRun, reason: r.reason, cpuMs: cpuMs() }, 'worker leaving');
    if (id.ctx.backend === 'aws') await uploadBootLog(backend, a.job, id.instance);
    return r.exitCode;
  } finally {
    for (const c of cleanups) c();
    await backend?.close();
    if (id.ctx.backend === 'local') rmSync(id.workdir, { recursive: true, force: true });
  }
}

/**
 * CPU time this worker used (user + system, ms), its own and its tasks' (the children it waited
 * for: fields 16 and 17 of /proc/self/stat, in clock ticks, 100 a second on Linux): bench/local
 * reads it from the log, as a figure that the other processes of a busy machine do not blur.
 */
function cpuMs(): { agent: number; agentSystem: number; tasks?: number } {
  const own = process.cpuUsage();
  const agent = { agent: Math.round((own.user + own.system) / 1000), agentSystem: Math.round(own.system / 1000) };
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ...agent, tasks: (Number(f[13]) + Number(f[14])) * 10 };
  } catch {
    return agent;
  }
}

/** A progress tag on the instance's own EC2 tags too (as `gq-agent tag` does when it can). */
function instanceTagger(region: string, instance: string): ((key: string, value: string) => Promise<void>) | undefined {
  if (!instance.startsWith('i-')) return undefined;
  return async (key, value) => {
    const { tagInstance } = await import('./aws/ec2-tags.js');
    await tagInstance(region, instance, key, value);
  };
}

/** On EC2: the UserData log goes to the bucket so an instance can be debugged without SSH. */
async function uploadBootLog(backend: Backend, job: string, instance: string): Promise<void> {
  const file = join(process.env.HOME ?? '/root', 'gq', 'userdata.log');
  if (!existsSync(file)) return;
  const { keys } = await import('@gq/common');
  await backend.artifacts.putFile(keys.instanceLog(job, instance, 'userdata.log'), file).catch(() => undefined);
}

/** How this worker is billed (usage.ts): a local one costs nothing; on EC2 an unknown price stays unknown. */
async function billingOf(id: Identity, log: Logger): Promise<BillingFacts> {
  if (!id.billing) return { lifecycle: 'local', pricePerHour: 0, launchedAt: Date.now() - process.uptime() * 1000 };
  return id.billing(log).catch((err: unknown) => {
    log.warn({ err }, 'could not tell how this instance is billed; its cost shows as "price unknown"');
    return { lifecycle: 'on-demand' as const };
  });
}
