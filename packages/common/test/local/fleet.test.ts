/** The local fleet: detached worker processes, counted by pid liveness. Leaves no process behind. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalFleet, openLocalBackend, processAlive, type LocalBackend } from '../../src/local/index.js';
import type { JobRecord } from '../../src/job/model.js';
import { emptyCounts } from '../../src/job/states.js';
import { makeSpec } from '../contract/status.contract.js';
import { tempHome } from './helpers.js';

const dir = tempHome('fleet');
/** A stand-in agent: prints its arguments, then idles until killed. */
const FAKE_AGENT = [process.execPath, '-e', 'console.log(JSON.stringify(process.argv.slice(1))); setInterval(() => {}, 1000)'];
const backend: LocalBackend = openLocalBackend({ home: dir.home, agentCommand: FAKE_AGENT });
const pids = new Set<number>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(50);
  }
  return cond();
}

function jobRecord(name: string): JobRecord {
  return { ...makeSpec(name, 1), counts: emptyCounts(), cancelRequested: false, updatedAt: new Date().toISOString() };
}

async function track(job: string): Promise<void> {
  for (const r of await backend.status.listInstances(job)) if (r.pid) pids.add(r.pid);
}

afterAll(async () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const pid of pids) expect(await until(() => !processAlive(pid))).toBe(true);
  await backend.close();
  dir.remove();
});

describe('LocalFleet', () => {
  it('spawns the missing workers, counts live ones, stop() kills them', async () => {
    const job = jobRecord('fleet-a');
    const g = await backend.fleet.ensureCapacity(job, 'local', 2);
    await track(job.name);
    expect(g).toMatchObject({ instanceType: 'local', desired: 2, max: 256 });
    expect(g.instances).toHaveLength(2);
    for (const i of g.instances) expect(i.id).toMatch(/^local-local-[a-z0-9]{6}$/);

    const recs = await backend.status.listInstances(job.name);
    expect(recs).toHaveLength(2);
    for (const r of recs) {
      expect(r).toMatchObject({ job: job.name, instanceType: 'local', state: 'BOOTING' });
      expect(processAlive(r.pid, r.instance)).toBe(true);
    }

    // Already there: nothing new.
    const again = await backend.fleet.ensureCapacity(job, 'local', 2);
    expect(again.instances.map((i) => i.id).sort()).toEqual(g.instances.map((i) => i.id).sort());
    // One more.
    const three = await backend.fleet.ensureCapacity(job, 'local', 3);
    await track(job.name);
    expect(three.instances).toHaveLength(3);

    const described = await backend.fleet.describe(job.name);
    expect(described).toHaveLength(1);
    expect(described[0]!.instances.map((i) => i.state)).toEqual(['running', 'running', 'running']);

    // The worker's arguments and output go to its log.
    const first = g.instances[0]!.id;
    const log = join(dir.home, 'logs', job.name, `${first}.log`);
    expect(await until(() => existsSync(log) && readFileSync(log, 'utf8').includes(first))).toBe(true);
    const argv = JSON.parse(readFileSync(log, 'utf8').trim().split('\n')[0]!) as string[];
    expect(argv).toEqual(['run', '--backend', 'local', '--home', dir.home, '--job', job.name, '--instance-type', 'local', '--instance', first]);

    await backend.fleet.stop(job.name);
    const all = await backend.status.listInstances(job.name);
    for (const r of all) expect(await until(() => !processAlive(r.pid))).toBe(true);
    expect(await backend.fleet.describe(job.name)).toEqual([]);
  });

  it('protect is recorded; terminateSelf marks STOPPED and the worker no longer counts', async () => {
    const job = jobRecord('fleet-b');
    const g = await backend.fleet.ensureCapacity(job, 'small', 1);
    await track(job.name);
    const id = g.instances[0]!.id;
    await backend.fleet.protect(job.name, 'small', id, true);
    expect((await backend.fleet.describe(job.name))[0]!.instances[0]).toEqual({ id, state: 'running', phase: 'running', protected: true, healthy: true });
    // A local worker starts or fails at once: no launch problem, no boot history to read.
    expect((await backend.fleet.describe(job.name))[0]!.launchProblem).toBeUndefined();
    expect(backend.fleet.launched).toBeUndefined();
    await backend.fleet.protect(job.name, 'small', id, false);
    expect((await backend.fleet.describe(job.name))[0]!.instances[0]!.protected).toBe(false);

    await backend.fleet.terminateSelf(job.name, 'small', id);
    expect((await backend.status.listInstances(job.name)).find((r) => r.instance === id)!.state).toBe('STOPPED');
    expect(await backend.fleet.describe(job.name)).toEqual([]);
    // A replacement is started for the leaving worker.
    const g2 = await backend.fleet.ensureCapacity(job, 'small', 1);
    await track(job.name);
    expect(g2.instances.map((i) => i.id)).not.toContain(id);

    // remove() stops every process of the job, the leaving one included.
    await backend.fleet.remove(job.name);
    for (const r of await backend.status.listInstances(job.name)) expect(await until(() => !processAlive(r.pid))).toBe(true);
    expect(existsSync(join(dir.home, 'fleet', job.name))).toBe(false);
  });

  it('desired is clamped to the maximum; 0 spawns nothing', async () => {
    const fleet = new LocalFleet({ home: dir.home, agentCommand: FAKE_AGENT, status: backend.status, maxWorkers: 2 });
    const job = jobRecord('fleet-c');
    expect((await fleet.ensureCapacity(job, 'x', 0)).instances).toEqual([]);
    const g = await fleet.ensureCapacity(job, 'x', 5);
    await track(job.name);
    expect(g).toMatchObject({ desired: 2, max: 2 });
    expect(g.instances).toHaveLength(2);
    await fleet.stop(job.name);
    for (const r of await backend.status.listInstances(job.name)) expect(await until(() => !processAlive(r.pid))).toBe(true);
  });

  it('an agent command that cannot start is an error and records nothing', async () => {
    const fleet = new LocalFleet({ home: dir.home, agentCommand: ['/nonexistent/gq-agent'], status: backend.status });
    const job = jobRecord('fleet-d');
    await expect(fleet.ensureCapacity(job, 'x', 1)).rejects.toThrow(/Could not start/);
    expect(await backend.status.listInstances(job.name)).toEqual([]);
    await expect(fleet.ensureCapacity(jobRecord('../evil'), 'x', 1)).rejects.toThrow(/file name/);
  });

  it('processAlive: self, a wrong marker, a dead pid', () => {
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(process.pid, 'no-such-marker-in-my-cmdline')).toBe(process.platform !== 'linux');
    expect(processAlive(2 ** 22 + 12345)).toBe(false);
    expect(processAlive(undefined)).toBe(false);
  });
});
