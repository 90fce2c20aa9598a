/**
 * The reaper (local/reaper.ts): the task of a worker whose process is gone goes back to the queue
 * at once, what that worker left running is stopped first, and a task whose holder is alive (or
 * may be) is never touched, even when its pid was recycled by another process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openLocalBackend, processAlive, workerAlive, processStartTime, type LocalBackend } from '../../src/local/index.js';
import { makeSpec, makeTasks } from '../contract/status.contract.js';
import { tempHome } from './helpers.js';

const dir = tempHome('reaper');
let backend: LocalBackend;
const children: ChildProcess[] = [];

beforeAll(() => {
  backend = openLocalBackend({ home: dir.home, agentCommand: [] });
});
afterAll(async () => {
  await backend.close();
  dir.remove();
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A process that then exits: its pid is gone (and reaped: it is our child). */
async function deadPid(): Promise<number> {
  const c = spawn('sleep', ['30']);
  children.push(c);
  const pid = c.pid!;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await gone;
  return pid;
}

/** A detached command group, as the agent runs a task (runFile "<pgid> <token>" + GQ_RUN_ID). */
function leftoverCommand(runFile: string): ChildProcess {
  const token = `tok${process.pid}${Date.now()}`;
  const c = spawn('bash', ['-c', 'sleep 60 & wait'], { detached: true, env: { ...process.env, GQ_RUN_ID: token }, stdio: 'ignore' });
  children.push(c);
  writeFileSync(runFile, `${c.pid} ${token}\n`);
  return c;
}

describe('workerAlive', () => {
  it('knows this process by its pid and start time, and a recycled pid as another process', () => {
    const start = processStartTime(process.pid);
    expect(start).toMatch(/^\d+$/);
    expect(workerAlive({ pid: process.pid, pidStart: start, instance: 'x' })).toBe(true);
    expect(workerAlive({ pid: process.pid, pidStart: String(Number(start) + 1), instance: 'x' })).toBe(false);
    expect(workerAlive({ pid: undefined, instance: 'x' })).toBe(false);
  });
});

describe('LocalReaper', () => {
  it('gives back the tasks of dead workers at the next receive, and only theirs', async () => {
    const job = 'reap-1';
    const spec = makeSpec(job, 4);
    const type = Object.keys(spec.instanceTypes)[0]!;
    await backend.status.createJob(spec, makeTasks(4));
    const q = await backend.queues.ensure(job, type, { visibilitySeconds: 300, maxReceiveCount: 10 });
    await q.send([1, 2, 3, 4]);
    const got = await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 300 });
    expect(got.map((m) => m.task).sort()).toEqual([1, 2, 3, 4]);
    const now = new Date().toISOString();
    const me = { job, instanceType: type, state: 'BUSY' as const, heartbeatAt: now };
    // 1: its worker is gone; 2: its worker is alive (this process); 3: its pid now names another
    // process (start time differs); 4: nothing is known about its worker's process.
    await backend.status.putInstance({ ...me, instance: 'w-dead', pid: await deadPid(), pidStart: '1' });
    await backend.status.putInstance({ ...me, instance: 'w-live', pid: process.pid });
    await backend.status.putInstance({ ...me, instance: 'w-recycled', pid: process.pid, pidStart: '1' });
    const owner: Record<number, string> = { 1: 'w-dead', 2: 'w-live', 3: 'w-recycled', 4: 'w-unknown' };
    for (const n of [1, 2, 3, 4]) expect((await backend.status.claim(job, n, owner[n]!, 300_000)).kind).toBe('claimed');
    const live = (await backend.status.listInstances(job)).find((i) => i.instance === 'w-live')!;
    expect(live.pidStart, 'the store records its own process with its start time').toBe(processStartTime(process.pid));

    // What the dead worker left running is stopped before its task can run again.
    const work = join(dir.home, 'work', job, 'w-dead');
    mkdirSync(work, { recursive: true });
    const left = leftoverCommand(join(work, 'running'));
    const leftGone = new Promise((r) => left.once('exit', r));
    // A worker with slots leaves one run file per busy slot (agent workspace.ts runFileOf).
    const leftInSlot = leftoverCommand(join(work, 'running.2'));
    const slotGone = new Promise((r) => leftInSlot.once('exit', r));

    const t0 = Date.now();
    const again = await q.receive({ max: 10, waitSeconds: 5, visibilitySeconds: 300 });
    expect(Date.now() - t0).toBeLessThan(4000); // released at once, not after the 5 s wait (margin for a busy machine)
    expect(again.map((m) => m.task).sort()).toEqual([1, 3]);
    await leftGone;
    expect(processAlive(left.pid)).toBe(false);
    await slotGone;
    expect(processAlive(leftInSlot.pid)).toBe(false);

    // Taken over as after a lease that ran out: a new attempt, by the new worker.
    for (const m of again) {
      const c = await backend.status.claim(job, m.task, 'w-new', 300_000);
      expect(c).toMatchObject({ kind: 'claimed', task: { instance: 'w-new', attempts: 2 } });
    }
    // The living holders keep their tasks.
    for (const n of [2, 4]) expect((await backend.status.claim(job, n, 'w-new', 300_000)).kind).toBe('leased');
    expect(backend.status.countTasksByState(job)).toMatchObject({ running: 4 });
    expect((await backend.status.getJob(job))!.counts).toMatchObject({ running: 4, queued: 0 });
  });

  it('acts once: a second pass finds nothing, and a lost message is sent again', async () => {
    const job = 'reap-2';
    const spec = makeSpec(job, 1);
    const type = Object.keys(spec.instanceTypes)[0]!;
    await backend.status.createJob(spec, makeTasks(1));
    const q = await backend.queues.ensure(job, type, { visibilitySeconds: 300, maxReceiveCount: 10 });
    await q.send([1]);
    const [m] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 300 });
    await backend.status.putInstance({ job, instance: 'w-dead', instanceType: type, state: 'BUSY', heartbeatAt: '', pid: await deadPid() });
    expect((await backend.status.claim(job, 1, 'w-dead', 300_000)).kind).toBe('claimed');
    await q.delete(m!.receipt); // its message is gone (deleted by mistake, or lost)
    expect(await backend.fleet.liveWorkers(job)).toEqual([]); // the fleet's liveness check reaps too
    expect(await q.depth()).toMatchObject({ visible: 1 });
    expect((await backend.fleet.liveWorkers(job)).length).toBe(0);
    expect(await q.depth()).toMatchObject({ visible: 1 });
  });
});
