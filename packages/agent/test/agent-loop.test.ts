/**
 * The agent loop's own paths, run in this process on the local backend (they do not depend on
 * the backend): leaving after the store was out of reach for the job's unreachableTimeout, leaving
 * when the job's queue is gone, and a lease lost while the task runs (another worker took the task
 * over: this worker must record nothing over the newer attempt, its results file included).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keys, type Backend, type TaskQueue } from '@gq/common';
import { openLocalBackend, type LocalBackend } from '@gq/common/local/index';
import { Agent, type AgentResult } from '../src/loop.js';
import { workerDeps } from './in-process.js';
import { makeLocalJob, TYPE, type Fixture } from './local-job.js';

const homes: string[] = [];
const open: LocalBackend[] = [];
const agents: Agent[] = [];

afterEach(async () => {
  // A failed test leaves no agent running (it would hold the store and the test run open).
  for (const a of agents.splice(0)) a.interrupt('shutdown');
  await new Promise((r) => setTimeout(r, 200));
  for (const b of open.splice(0)) await b.close();
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

/** An agent of the job in this process, with `wrap` around its queue (to make it fail). */
async function agentOf(f: Fixture, instance: string, wrap: (q: TaskQueue) => TaskQueue = (q) => q, backend: Backend = f.backend): Promise<Agent> {
  const queue = wrap(await f.backend.queues.open(f.job, TYPE));
  const agent = new Agent(workerDeps(f, instance, { queue, backend }));
  agents.push(agent);
  return agent;
}

/** A network failure as the SDK reports it (transient: retry.ts). */
function unreachable(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
}

/** The queue, with every receive failing while `down()` says so. */
function failingReceive(down: () => boolean): (q: TaskQueue) => TaskQueue {
  return (q) =>
    new Proxy(q, {
      get(target, prop, receiver) {
        if (prop === 'receive') {
          return async (opts: Parameters<TaskQueue['receive']>[0]) => {
            if (down()) throw unreachable();
            return target.receive(opts);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
}

async function timed(p: Promise<AgentResult>): Promise<{ r: AgentResult; ms: number }> {
  const t0 = Date.now();
  const r = await p;
  return { r, ms: Date.now() - t0 };
}

async function until(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function makeJob(label: string, commands: string[], over: Parameters<typeof makeLocalJob>[2] = {}): Promise<Fixture> {
  const f = await makeLocalJob(label, commands, over);
  homes.push(f.home);
  open.push(f.backend);
  return f;
}

describe('agent loop: AWS out of reach', () => {
  it("leaves once the store stayed out of reach for the job's unreachableTimeout (2 s here), not before", async () => {
    const f = await makeJob('unreach', ['true'], { unreachableSeconds: 2 });
    const agent = await agentOf(f, 'w-unreach', failingReceive(() => true));
    const { r, ms } = await timed(agent.run());
    expect(r).toEqual({ exitCode: 0, tasksRun: 0, reason: 'unreachable' });
    expect(ms).toBeGreaterThanOrEqual(2000);
    expect(ms).toBeLessThan(15_000); // far from the 30-minute default and the 600 s idle period
    // It left the fleet (local: its record is STOPPED); the task was never taken.
    expect((await f.backend.status.listInstances(f.job)).map((i) => i.state)).toEqual(['STOPPED']);
    expect((await f.backend.status.getTask(f.job, 1))!.state).toBe('QUEUED');
  });

  it('stays through an outage shorter than the limit, then runs the task', async () => {
    const f = await makeJob('blip', [`printf 'id\\n1\\n' > results.csv`], { unreachableSeconds: 6, idleSeconds: 1 });
    const upAt = Date.now() + 2500;
    const agent = await agentOf(f, 'w-blip', failingReceive(() => Date.now() < upAt));
    const r = await agent.run();
    expect(r).toEqual({ exitCode: 0, tasksRun: 1, reason: 'idle' });
    expect((await f.backend.status.getTask(f.job, 1))!.state).toBe('SUCCEEDED');
  });
});

describe('agent loop: the job is gone', () => {
  it('an idle worker leaves within seconds when the job is cleaned (its queue removed), not after its idle period', async () => {
    const f = await makeJob('gone', [`printf 'id\\n1\\n' > results.csv`], { idleSeconds: 600 });
    const agent = await agentOf(f, 'w-gone');
    const running = timed(agent.run());
    await until('the task to finish', async () => (await f.backend.status.getTask(f.job, 1))!.state === 'SUCCEEDED');
    await new Promise((r) => setTimeout(r, 500)); // now in its next receive (a 20 s long poll)
    // What `gq clean` does to the job's queues (its SIGTERM to local workers aside).
    const cleanedAt = Date.now();
    await f.backend.queues.remove(f.job, TYPE);
    const { r } = await running;
    expect(r).toEqual({ exitCode: 0, tasksRun: 1, reason: 'job-missing' });
    expect(Date.now() - cleanedAt).toBeLessThan(5000);
    expect((await f.backend.status.listInstances(f.job)).map((i) => i.state)).toEqual(['STOPPED']);
  });

  it('a worker started for a job that no longer exists exits 2 at once', async () => {
    const f = await makeJob('deleted', ['true']);
    await f.backend.status.deleteJob(f.job);
    const r = await (await agentOf(f, 'w-deleted')).run();
    expect(r).toEqual({ exitCode: 2, tasksRun: 0, reason: 'job-missing' });
  });
});

describe('agent loop: the lease lost mid-run', () => {
  /**
   * A network cut: this worker's heartbeats stop reaching the store, its lease (3 s) runs out,
   * another worker takes the task over, runs it and records it SUCCEEDED with its result. Then the
   * network comes back and this worker's command ends: it must record nothing, not even its
   * results file (same key as the newer attempt's).
   */
  it('the worker whose lease was taken over records nothing: not its outcome, not its results file', async () => {
    const ended = join(tmpdir(), `gq-agent-lost-${process.pid}-${Date.now()}`);
    const f = await makeJob('lost', [`sleep 5; printf 'id,by\\n1,old\\n' > results.csv; touch ${ended}`], { visibilitySeconds: 3, idleSeconds: 1 });
    let cut = false;
    const status = new Proxy(f.backend.status, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop === 'heartbeat') {
          return async (...a: Parameters<typeof target.heartbeat>) => {
            // Back when the command has ended (else a heartbeat would see the takeover first).
            if (cut && !existsSync(ended)) throw unreachable();
            return target.heartbeat(...a);
          };
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const agent = await agentOf(f, 'w-old', (q) => q, { ...f.backend, status });
    const running = agent.run();
    await until('the task to start', async () => (await f.backend.status.getTask(f.job, 1))!.state === 'RUNNING');
    cut = true;
    const resultKey = keys.taskOutput(f.job, 1, 'results.csv');
    // The old lease runs out; the new worker takes the task over and finishes it.
    await until('the lease to run out', async () => (await f.backend.status.claim(f.job, 1, 'w-new', 30_000)).kind === 'claimed', 6000);
    await f.backend.artifacts.putBytes(resultKey, 'id,by\n1,new\n');
    expect(await f.backend.status.complete(f.job, 1, 'w-new', { kind: 'succeeded', exitCode: 0, resultKey })).toEqual({
      kind: 'recorded',
      state: 'SUCCEEDED',
    });

    const r = await running;
    expect(existsSync(ended)).toBe(true); // the old command ran to its end
    rmSync(ended);
    expect(r.exitCode).toBe(0);
    expect((await f.backend.status.getTask(f.job, 1))!).toMatchObject({ state: 'SUCCEEDED', attempts: 2, resultKey });
    // The newer attempt's result stands: the old worker did not overwrite it.
    expect((await f.backend.artifacts.getBytes(resultKey)).toString()).toBe('id,by\n1,new\n');
    expect((await f.backend.status.getJob(f.job))!.counts).toMatchObject({ succeeded: 1, running: 0, queued: 0 });
  });

  it('a worker whose heartbeat finds the lease lost stops its command and records nothing', async () => {
    const marker = join(tmpdir(), `gq-agent-lost-hb-${process.pid}-${Date.now()}`);
    const f = await makeJob('lost-hb', [`sleep 20; touch ${marker}; printf 'id,by\\n1,old\\n' > results.csv`], {
      visibilitySeconds: 3, // heartbeat every second
      idleSeconds: 1,
    });
    const agent = await agentOf(f, 'w-old');
    const running = agent.run();
    await until('the task to start', async () => (await f.backend.status.getTask(f.job, 1))!.state === 'RUNNING');
    const later = openLocalBackend({ home: f.backend.home, clock: () => Date.now() + 120_000 });
    open.push(later);
    expect((await later.status.claim(f.job, 1, 'w-new', 600_000)).kind).toBe('claimed');
    const t0 = Date.now();
    await running;
    expect(Date.now() - t0).toBeLessThan(8000); // stopped, not run to its end
    expect((await f.backend.status.getTask(f.job, 1))!).toMatchObject({ state: 'RUNNING', attempts: 2, instance: 'w-new' });
    expect(await f.backend.artifacts.exists(keys.taskOutput(f.job, 1, 'results.csv'))).toBe(false);
    expect(() => readFileSync(marker)).toThrow();
  });
});

describe('agent loop: the cost cap reached between two reads of the job', () => {
  it('a task claimed after another worker recorded the stop goes back unrun and uncharged, and the worker leaves', async () => {
    const ran = join(tmpdir(), `gq-cap-ran-${process.pid}-${Date.now()}`);
    const f = await makeJob('cap-claim', [`touch ${ran}`, 'true'], { maxCost: 100, idleSeconds: 30 });
    // Another worker records the stop just before this one claims (this one read the job moments
    // before, without it, and would not read it again for a few seconds).
    let stopped = false;
    const status = new Proxy(f.backend.status, {
      get(target, prop, receiver) {
        if (prop === 'claim') {
          return async (...a: Parameters<typeof target.claim>) => {
            if (!stopped) {
              stopped = await target.markCapReached(f.job, { at: new Date().toISOString(), maxCost: 100, spend: 100.01, committed: 0, by: 'other' });
            }
            return target.claim(...a);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const agent = await agentOf(f, 'w-cap', (q) => q, { ...f.backend, status });
    const r = await agent.run();
    expect(stopped).toBe(true);
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 0, reason: 'cost-cap' });
    expect(existsSync(ran)).toBe(false); // never started
    const tasks = await f.backend.status.listTasks(f.job);
    expect(tasks.map((t) => [t.state, t.attempts])).toEqual([['QUEUED', 0], ['QUEUED', 0]]);
    const job = await f.backend.status.getJob(f.job);
    expect(job!.counts).toMatchObject({ queued: 2, running: 0 });
    // Its message is visible again, at once: a raised cap (gq resume) runs it without waiting.
    expect(await (await f.backend.queues.open(f.job, TYPE)).depth()).toMatchObject({ visible: 2, inFlight: 0 });
  });
});
