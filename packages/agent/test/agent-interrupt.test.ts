/**
 * The agent loop's interruptions, in this process on the local backend: a Spot interruption notice
 * (run.ts calls interrupt('release') when the metadata service announces one) gives the running
 * task back unrun, not charged as an attempt, takes no other task, and keeps the worker in its
 * group so that Auto Scaling replaces it for the task; a notice that comes as a message arrives
 * gives that message back unclaimed; a second SIGTERM (interrupt('shutdown')) gives the task back
 * too, and the worker leaves its group.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, TaskQueue } from '@gq/common';
import type { Agent } from '../src/loop.js';
import { InProcess, TYPE, until, wrap, writesResult, type Fixture } from './in-process.js';

const t = new InProcess();
afterEach(() => t.cleanup());

/** The job's backend, counting the worker's calls to leave its group. */
function countingLeaves(f: Fixture): { backend: Backend; leaves: string[] } {
  const leaves: string[] = [];
  const fleet = wrap(f.backend.fleet, {
    async terminateSelf(job, type, instance) {
      leaves.push(instance);
      await f.backend.fleet.terminateSelf(job, type, instance);
    },
  });
  return { backend: { ...f.backend, fleet }, leaves };
}

async function expectGivenBack(f: Fixture, tasks: number[]): Promise<void> {
  for (const n of tasks) {
    const rec = (await f.backend.status.getTask(f.job, n))!;
    expect(rec).toMatchObject({ state: 'QUEUED', attempts: 0 });
    expect(rec.resultKey).toBeUndefined();
  }
  // Visible again at once, for the next worker.
  expect((await (await f.backend.queues.open(f.job, TYPE)).depth()).visible).toBe(tasks.length);
  expect((await f.backend.status.getJob(f.job))!.counts).toMatchObject({ queued: tasks.length, running: 0 });
}

const slow = `sleep 30; ${writesResult('1')}`;

describe('agent loop: interruption', () => {
  for (const reason of ['release', 'shutdown'] as const) {
    const what = reason === 'release' ? 'a Spot notice' : 'a second SIGTERM';
    it(`${what} while a task runs: the task is given back unrun and not charged, no other task is taken`, async () => {
      const f = await t.job(`int-${reason}`, [slow, slow]);
      const { backend, leaves } = countingLeaves(f);
      const w = await t.start(f, 'w-int', { backend });
      await until('a task to run', async () => (await f.backend.status.listTasks(f.job, { states: ['RUNNING'] })).length === 1);
      const t0 = Date.now();
      w.agent.interrupt(reason);
      const r = await w.done;
      expect(Date.now() - t0).toBeLessThan(10_000); // stopped, not the command's 30 s
      expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'interrupted' });
      await expectGivenBack(f, [1, 2]);
      expect((await f.backend.status.listInstances(f.job)).map((i) => i.state)).toEqual(['STOPPED']);
      // Spot: EC2 reclaims the instance; staying in the group has Auto Scaling replace it.
      expect(leaves).toEqual(reason === 'release' ? [] : ['w-int']);
    });
  }

  it('a Spot notice as a message arrives: the message is given back unclaimed', async () => {
    const f = await t.job('int-receive', [writesResult('1')]);
    let agent: Agent | undefined;
    const noticeOnReceive = (q: TaskQueue) =>
      wrap(q, {
        async receive(o) {
          const got = await q.receive(o);
          if (got.length > 0) agent!.interrupt('release');
          return got;
        },
      });
    const w = await t.start(f, 'w-int-rcv', { queue: noticeOnReceive });
    agent = w.agent;
    const r = await w.done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 0, reason: 'interrupted' });
    await expectGivenBack(f, [1]);
  });
});
