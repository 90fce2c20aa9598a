/**
 * The agent loop when its hold on a task weakens, in this process on the local backend and a fake
 * clock: heartbeats that did not land for over half a lease make the worker ask the store before
 * it uploads anything (and record nothing when another worker took the task over); a lease lost
 * just before the outcome is recorded leaves the outcome unrecorded and the message to the new
 * owner. (agent-loop.test.ts runs the takeover and the heartbeat that finds it in real time.)
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keys, type CompleteResult } from '@gq/common';
import type { Agent } from '../src/loop.js';
import { InProcess, TYPE, until, wrap, writesResult, type Fixture } from './in-process.js';

const t = new InProcess();
afterEach(() => t.cleanup());

const depthOf = async (f: Fixture) => (await f.backend.queues.open(f.job, TYPE)).depth();

describe('agent loop: heartbeats that do not land', () => {
  const cases = {
    landed: 'heartbeats that landed: no question asked before uploading, the result recorded',
    missed: 'missed for over half the lease: the worker asks before uploading, and records its result (the task is still its own)',
    'taken over': 'missed past the lease: the worker asks before uploading, and records nothing (the task was taken over)',
  };
  for (const [kind, title] of Object.entries(cases)) {
    const takenOver = kind === 'taken over';
    it(title, async () => {
      // The command says it started (its heartbeat runs by then) and ends when the test says so.
      const f = await t.job('missed', (home) => [`touch ${home}/started; while [ ! -e ${home}/go ]; do sleep 0.02; done; ${writesResult('old')}`], {
        visibilitySeconds: 30,
      });
      let down = false;
      let calls = 0;
      const status = wrap(f.backend.status, {
        async heartbeat(...a) {
          calls++;
          if (down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          return f.backend.status.heartbeat(...a);
        },
      });
      const w = await t.start(f, 'w-old', { backend: { ...f.backend, status } });
      await until('the command to start', () => existsSync(join(f.home, 'started')));
      const resultKey = keys.taskOutput(f.job, 1, 'results.csv');
      down = kind !== 'landed';
      if (takenOver) {
        // Past the lease (30 s): another worker takes the task, runs it and records its result.
        await t.clock.advance(31_000);
        expect((await f.backend.status.claim(f.job, 1, 'w-new', 30_000)).kind).toBe('claimed');
        await f.backend.artifacts.putBytes(resultKey, 'id\nnew\n');
        expect((await f.backend.status.complete(f.job, 1, 'w-new', { kind: 'succeeded', exitCode: 0, resultKey })).kind).toBe('recorded');
      } else {
        await t.clock.advance(20_000); // two beats (missed or not); the lease (30 s) holds
      }
      down = false;
      const before = calls;
      w.agent.drain(); // the worker ends after this task
      writeFileSync(join(f.home, 'go'), '');
      const r = await w.done;
      expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'drained' });
      expect(calls - before).toBe(kind === 'landed' ? 0 : 1); // the one question, after the command ended
      const rec = (await f.backend.status.getTask(f.job, 1))!;
      expect(rec).toMatchObject({ state: 'SUCCEEDED', attempts: takenOver ? 2 : 1, resultKey });
      expect((await f.backend.artifacts.getBytes(resultKey)).toString()).toBe(takenOver ? 'id\nnew\n' : 'id\nold\n');
      expect((await f.backend.status.getJob(f.job))!.counts).toMatchObject({ succeeded: 1, running: 0 });
    });
  }

  it('the lease lost just before the outcome is recorded: nothing recorded, the message left to the new owner', async () => {
    const f = await t.job('lost-record', [writesResult('old')], { visibilitySeconds: 30 });
    const results: CompleteResult[] = [];
    const later = t.aheadOf(f, 120_000); // where this worker's lease has run out
    let agent: Agent | undefined;
    const status = wrap(f.backend.status, {
      async complete(job, task, instance, outcome) {
        // Paused here past its lease: another worker took the task over meanwhile.
        expect((await later.claim(job, task, 'w-new', 600_000)).kind).toBe('claimed');
        const cr = await f.backend.status.complete(job, task, instance, outcome);
        results.push(cr);
        agent!.drain(); // the worker ends after this task
        return cr;
      },
    });
    const w = await t.start(f, 'w-old', { backend: { ...f.backend, status } });
    agent = w.agent;
    const r = await w.done;
    expect(r).toMatchObject({ exitCode: 0, tasksRun: 1, reason: 'drained' });
    expect(results).toEqual([{ kind: 'lost' }]);
    expect((await f.backend.status.getTask(f.job, 1))!).toMatchObject({ state: 'RUNNING', attempts: 2, instance: 'w-new' });
    expect((await f.backend.status.getJob(f.job))!.counts).toMatchObject({ succeeded: 0, running: 1 });
    // Neither deleted nor given back: still hidden, as this worker received it.
    expect(await depthOf(f)).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
  });
});
