/**
 * The agent records where each attempt runs (instance type, and Spot or on-demand from its
 * billing facts: usage.ts) and how it ended: a timed-out attempt is 'timeout' in the task's
 * history, not just 'failed'. One real worker in this process on the local backend.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../src/loop.js';
import { workerDeps, writesResult } from './in-process.js';
import { makeLocalJob, TYPE, type Fixture } from './local-job.js';

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) {
    await f.backend.close();
    rmSync(f.home, { recursive: true, force: true });
  }
});

describe('agent: attempt history', () => {
  it('each claim says the instance type and lifecycle; a timeout is recorded as one', async () => {
    const f = await makeLocalJob('history', [writesResult('1'), 'sleep 30'], { timeoutSeconds: 1, maxAttempts: 1, idleSeconds: 1 });
    fixtures.push(f);
    const deps = { ...workerDeps(f, 'w-spot', { queue: await f.backend.queues.open(f.job, TYPE) }), billing: { lifecycle: 'spot' as const, pricePerHour: 0.1 } };
    const r = await new Agent(deps).run();
    expect(r).toBeDefined();
    const [t1, t2] = [await f.backend.status.getTask(f.job, 1), await f.backend.status.getTask(f.job, 2)];
    expect(t1!.history).toEqual([expect.objectContaining({ instance: 'w-spot', instanceType: TYPE, lifecycle: 'spot', outcome: 'succeeded', exitCode: 0 })]);
    expect(t2!.state).toBe('FAILED');
    expect(t2!.history).toEqual([expect.objectContaining({ instance: 'w-spot', lifecycle: 'spot', outcome: 'timeout' })]);
  }, 30_000);
});
