/**
 * In-process workers on the local backend, on one fake clock (fake-clock.ts) shared by the agent,
 * the queue and the status store: the set-up of the agent's loop tests. The queue's long poll
 * passes in the fake time too (one probe per fake second), so an idle period of ten minutes takes
 * a fraction of a second. Real time still runs the tasks' and the install's commands.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, type Backend, type JobSpec, type TaskQueue } from '@gq/common';
import { openLocalBackend, type LocalBackend } from '@gq/common/local/index';
import { Agent, type AgentResult } from '../src/loop.js';
import type { Clock } from '../src/clock.js';
import type { AgentDeps } from '../src/deps.js';
import { workspaceAt } from '../src/workspace.js';
import { FakeClock } from './fake-clock.js';
import { makeLocalJob, TYPE, type Fixture } from './local-job.js';

export { TYPE, type Fixture };

export interface Worker {
  agent: Agent;
  /** The result, with the fake time at which the worker left. */
  done: Promise<AgentResult & { leftAt: number }>;
}

/** What an agent of the job in this process is given (a quiet logger unless GQ_TEST_AGENT_LOG says otherwise). */
export function workerDeps(f: Fixture, instance: string, o: { queue: TaskQueue; backend?: Backend; clock?: Clock }): AgentDeps {
  return {
    backend: o.backend ?? f.backend,
    queue: o.queue,
    ws: workspaceAt(join(f.home, 'work', instance)),
    job: f.job,
    instance,
    instanceType: TYPE,
    log: createLogger({ level: (process.env.GQ_TEST_AGENT_LOG as 'info' | undefined) ?? 'silent' }),
    baseEnv: { PATH: process.env.PATH },
    contextJson: JSON.stringify({ backend: 'local', home: f.backend.home }),
    clock: o.clock,
  };
}

/** `target` with some of its methods replaced (the others bound to it). */
export function wrap<T extends object>(target: T, over: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(over, prop)) return over[prop as keyof T];
      const v = Reflect.get(t, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

/**
 * The queue, its long poll (up to waitSeconds) passing in `clock`'s time: a probe per second.
 * With `realStepMs`, the poll passes in real time instead, taking `clock` along a probe every
 * `realStepMs`: for workers with several slots, which receive while tasks run (in real time), and
 * a fake time running ahead would outrun the tasks' heartbeats and end their leases.
 */
export function fakeTimePoll(q: TaskQueue, clock: FakeClock, realStepMs?: number): TaskQueue {
  const now = () => (realStepMs ? Date.now() : clock.now());
  return wrap(q, {
    async receive(o) {
      const end = now() + o.waitSeconds * 1000;
      for (;;) {
        const got = await q.receive({ ...o, waitSeconds: 0 });
        if (got.length > 0 || now() >= end) return got;
        if (realStepMs) await new Promise((r) => setTimeout(r, realStepMs));
        await clock.advance(realStepMs ?? Math.min(1000, end - clock.now()));
      }
    },
  });
}

/** A command that writes a results file with one row (the task succeeds). */
export const writesResult = (row: string): string => `printf 'id\\n${row}\\n' > results.csv`;

/** Poll `pred` in real time (for what a real command does). */
export async function until(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Jobs and workers of one test; `cleanup` (afterEach) stops the workers, removes the jobs and starts a new clock. */
export class InProcess {
  clock = new FakeClock();
  private readonly fixtures: Fixture[] = [];
  private readonly workers: Worker[] = [];
  private readonly others: LocalBackend[] = [];

  async job(label: string, commands: string[] | ((home: string) => string[]), over: Partial<JobSpec> = {}): Promise<Fixture> {
    const f = await makeLocalJob(label, commands, over, this.clock.now);
    this.fixtures.push(f);
    return f;
  }

  /** The job's status store as another machine sees it, its clock `aheadMs` ahead (leases run out sooner there). */
  aheadOf(f: Fixture, aheadMs: number): LocalBackend['status'] {
    const other = openLocalBackend({ home: f.backend.home, clock: () => this.clock.now() + aheadMs });
    this.others.push(other);
    return other.status;
  }

  /** Start a worker of the job; `backend` and `queue` change the ports it is given; `realTime`: its poll passes in real time (fakeTimePoll). */
  async start(f: Fixture, instance: string, o: { backend?: Backend; queue?: (q: TaskQueue) => TaskQueue; realTime?: boolean } = {}): Promise<Worker> {
    const opened = await f.backend.queues.open(f.job, TYPE);
    const queue = fakeTimePoll(opened, this.clock, o.realTime ? 50 : undefined);
    const agent = new Agent(workerDeps(f, instance, { queue: o.queue ? o.queue(queue) : queue, backend: o.backend, clock: this.clock }));
    const w: Worker = { agent, done: agent.run().then((r) => ({ ...r, leftAt: this.clock.now() })) };
    this.workers.push(w);
    return w;
  }

  async cleanup(): Promise<void> {
    // A failed test leaves no worker running (it would hold the store and the test run open).
    for (const w of this.workers.splice(0)) {
      w.agent.interrupt('shutdown');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([w.done.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
    for (const b of this.others.splice(0)) await b.close();
    for (const f of this.fixtures.splice(0)) {
      await f.backend.close();
      rmSync(f.home, { recursive: true, force: true });
    }
    this.clock = new FakeClock();
  }
}
