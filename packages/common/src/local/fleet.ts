/**
 * Fleet of the local backend: an "instance" is a detached worker process running the agent
 * (`<agentCommand> run --backend local --home H --job J --instance-type T --instance ID`), with
 * its output in `<home>/logs/<job>/<id>.log` and an InstanceRecord (with its pid) in the status
 * store. A worker counts as live while its pid is alive and its record is not STOPPED.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Fleet, FleetGroup, FleetInstance, StatusStore } from '../ports.js';
import type { InstanceRecord, JobRecord } from '../job/model.js';
import { GqError, UserError } from '../errors.js';
import { nowIso } from '../time.js';
import { processStartTime, workerAlive } from './procs.js';
import { reapWorkFolder, type LocalReaper } from './reaper.js';
import { isPlainSegment } from '../safe-path.js';
import { workerEnv } from '../worker-env.js';

/** The most worker processes per (job, instance type). */
export const MAX_LOCAL_WORKERS = 256;

export interface LocalFleetOptions {
  home: string;
  /** How to start the agent, e.g. [process.execPath, '/path/to/gq-agent.js']. */
  agentCommand: readonly string[];
  status: StatusStore;
  /** Cap on workers per (job, instance type); default and maximum 256. */
  maxWorkers?: number;
  /** Releases the tasks of workers whose process is gone (run by every liveness check). */
  reaper?: LocalReaper;
}

/** A job name or instance id used as a file name. */
function pathSegment(what: string, v: string): string {
  if (!isPlainSegment(v)) {
    throw new UserError(`${what} ${JSON.stringify(v)} cannot be used as a file name.`);
  }
  return v;
}

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomId(n: number): string {
  const b = randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += ID_CHARS[b[i]! % ID_CHARS.length];
  return s;
}

export class LocalFleet implements Fleet {
  readonly home: string;
  readonly maxWorkers: number;
  private readonly agentCommand: readonly string[];
  private readonly status: StatusStore;
  private readonly reaper: LocalReaper | undefined;

  constructor(opts: LocalFleetOptions) {
    this.home = opts.home;
    this.reaper = opts.reaper;
    this.agentCommand = opts.agentCommand;
    this.status = opts.status;
    this.maxWorkers = Math.max(1, Math.min(MAX_LOCAL_WORKERS, Math.floor(opts.maxWorkers ?? MAX_LOCAL_WORKERS)));
  }

  /**
   * Live workers of a job (optionally of one instance type). Cleans up after lost ones: what they
   * left running is stopped and their tasks go back to the queue at once (reaper.ts), rather
   * than after their lease.
   */
  async liveWorkers(job: string, instanceType?: string): Promise<InstanceRecord[]> {
    this.reaper?.reap(job);
    const recs = await this.status.listInstances(job);
    const live = recs.filter((r) => workerAlive(r));
    // A worker whose process is gone without having cleaned up (killed with SIGKILL, crashed):
    // its running command (own process group) is stopped, as losing the machine would stop it on
    // EC2, so that it does not run on beside the task's retry; then its work folder is removed.
    // A worker that ended normally removed its folder itself.
    for (const r of recs) if (!live.includes(r)) reapWorkFolder(this.home, job, r.instance);
    return live.filter((r) => (instanceType === undefined || r.instanceType === instanceType) && r.state !== 'STOPPED');
  }

  async ensureCapacity(job: JobRecord, instanceType: string, desired: number): Promise<FleetGroup> {
    pathSegment('Job name', job.name);
    const want = Math.max(0, Math.min(this.maxWorkers, Math.floor(Number.isFinite(desired) ? desired : 0)));
    const live = await this.liveWorkers(job.name, instanceType);
    for (let i = live.length; i < want; i++) live.push(await this.spawnWorker(job.name, instanceType));
    return this.group(job.name, instanceType, live, Math.max(want, live.length));
  }

  async describe(job: string): Promise<FleetGroup[]> {
    const live = await this.liveWorkers(job);
    const types = [...new Set(live.map((r) => r.instanceType))].sort();
    return types.map((t) => {
      const mine = live.filter((r) => r.instanceType === t);
      return this.group(job, t, mine, mine.length);
    });
  }

  async protect(job: string, _instanceType: string, instance: string, on: boolean): Promise<void> {
    // Nothing scales a local fleet in; the flag is only recorded (shown by describe).
    const file = this.protectFile(job, instance);
    if (on) {
      mkdirSync(join(this.home, 'fleet', job), { recursive: true });
      writeFileSync(file, '');
    } else {
      rmSync(file, { force: true });
    }
  }

  async terminateSelf(job: string, instanceType: string, instance: string): Promise<void> {
    const recs = await this.status.listInstances(job);
    const rec = recs.find((r) => r.instance === instance);
    const base: InstanceRecord = rec ?? { job, instance, instanceType, state: 'STOPPED', heartbeatAt: nowIso() };
    // An install failure stays on record: it is why this worker left, and what `gq status` shows.
    const state = base.state === 'INSTALL_FAILED' ? 'INSTALL_FAILED' : 'STOPPED';
    await this.status.putInstance({ ...base, state, heartbeatAt: nowIso() });
    rmSync(this.protectFile(job, instance), { force: true });
  }

  async stop(job: string): Promise<void> {
    // Every process of the job that is still there, leaving (STOPPED) ones included.
    const recs = await this.status.listInstances(job);
    for (const r of recs.filter((x) => workerAlive(x))) {
      try {
        process.kill(r.pid!, 'SIGTERM');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
  }

  async remove(job: string): Promise<void> {
    await this.stop(job);
    rmSync(join(this.home, 'fleet', pathSegment('Job name', job)), { recursive: true, force: true });
  }

  private protectFile(job: string, instance: string): string {
    return join(this.home, 'fleet', pathSegment('Job name', job), `${pathSegment('Instance id', instance)}.protected`);
  }

  private group(job: string, instanceType: string, live: InstanceRecord[], desired: number): FleetGroup {
    const instances: FleetInstance[] = live.map((r) => ({
      id: r.instance,
      state: 'running',
      // A worker that left (STOPPED) or whose process is gone is not described at all.
      phase: 'running',
      protected: existsSync(this.protectFile(job, r.instance)),
      healthy: true,
    }));
    // No launchProblem: a local worker starts or its spawn fails at once (ensureCapacity throws).
    return { instanceType, desired, max: this.maxWorkers, instances };
  }

  private async spawnWorker(job: string, instanceType: string): Promise<InstanceRecord> {
    const [cmd, ...pre] = this.agentCommand;
    if (!cmd) throw new GqError('The local fleet has no agent command to start workers with.');
    const id = `local-${instanceType.replace(/[^A-Za-z0-9._-]/g, '-')}-${randomId(6)}`;
    const logDir = join(this.home, 'logs', job);
    mkdirSync(logDir, { recursive: true });
    const fd = openSync(join(logDir, `${id}.log`), 'a');
    let pid: number | undefined;
    try {
      const child = spawn(
        cmd,
        [...pre, 'run', '--backend', 'local', '--home', this.home, '--job', job, '--instance-type', instanceType, '--instance', id],
        // Without NODE_EXTRA_CA_CERTS (a worker opens no TLS connection): ~80 ms less CPU per start;
        // its tasks get it back (worker-env.ts).
        { detached: true, stdio: ['ignore', fd, fd], env: workerEnv(process.env) },
      );
      child.on('error', () => {}); // reported below through the missing pid
      pid = child.pid;
      child.unref();
    } finally {
      closeSync(fd);
    }
    if (!pid) throw new GqError(`Could not start a local worker with ${JSON.stringify(cmd)}.`);
    const pidStart = processStartTime(pid);
    const rec: InstanceRecord = { job, instance: id, instanceType, state: 'BOOTING', heartbeatAt: nowIso(), pid, ...(pidStart ? { pidStart } : {}) };
    await this.status.putInstance(rec);
    return rec;
  }
}
