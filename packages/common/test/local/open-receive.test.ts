/**
 * A receive left open for its claim (the agent's side: LocalQueueOptions.leaveReceiveOpen, db.ts
 * withWriteLock `leaveOpen`): one commit for the receive and the claim after it; nothing of it
 * is seen by another connection before that commit; the commit comes by itself one turn of the
 * event loop later when no write follows, and what it delivered is then another receiver's no
 * more; a failed write that joins it undoes only itself; a crash before the commit (the connection
 * closed without it) takes the receive back.
 */
import { describe, expect, it } from 'vitest';
import { commitLeftOpen, LocalQueueProvider, LocalStatusStore, withWriteLock, type Db } from '../../src/local/index.js';
import { testDb } from './helpers.js';

const { connect, job } = testDb('open-receive', 'or');
const T = 'local';
const turn = () => new Promise<void>((r) => setImmediate(r));
/** The messages of `job` delivered (as another connection sees them). */
const delivered = (db: Db, name: string) => {
  const q = db.prepare('SELECT COUNT(*) FROM messages JOIN queues ON queues.id = messages.queue WHERE queues.job = ? AND receipt IS NOT NULL').pluck();
  return { get: () => q.get(name) as number };
};

async function setUp(tasks: number[]) {
  const agentDb = connect();
  const other = connect();
  const name = job('j');
  const status = new LocalStatusStore(agentDb);
  const spec = {
    name, backend: 'local' as const, createdAt: new Date().toISOString(), total: tasks.length, instanceTypes: { [T]: tasks.length },
    codeKey: 'bundles/none.tar.gz', resultsPath: 'results.csv', outputs: [], maxAttempts: 2, timeoutSeconds: 0,
    installTimeoutSeconds: 60, installAttempts: 1, visibilitySeconds: 60, idleSeconds: 1,
  };
  await status.createJob(spec, tasks.map((task) => ({ task, instanceType: T, command: 'true' })));
  const agentQueue = await new LocalQueueProvider(agentDb, { leaveReceiveOpen: true }).ensure(name, T, { visibilitySeconds: 60, maxReceiveCount: 5 });
  await agentQueue.send(tasks);
  return { agentDb, other, name, status, agentQueue, seen: delivered(other, name) };
}

describe('a receive left open for its claim', () => {
  it('is committed with the claim that follows, in one transaction; nothing is seen before', async () => {
    const { agentDb, other, name, status, agentQueue, seen } = await setUp([1, 2]);
    const [m] = await agentQueue.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    expect(m!.task).toBe(1);
    expect(agentDb.inTransaction).toBe(true);
    expect(seen.get()).toBe(0); // the other connection does not see the delivery yet
    const claimed = await status.claim(name, m!.task, 'w1', 60_000);
    expect(claimed.kind).toBe('claimed');
    expect(agentDb.inTransaction).toBe(false); // the claim committed both
    expect(seen.get()).toBe(1);
    expect(other.prepare('SELECT state FROM tasks WHERE job = ? AND task = 1').pluck().get(name)).toBe('RUNNING');
  });

  it('commits by itself one turn later when no write follows', async () => {
    const { agentDb, agentQueue, seen } = await setUp([1]);
    await agentQueue.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    expect(seen.get()).toBe(0);
    await turn();
    expect(agentDb.inTransaction).toBe(false);
    expect(seen.get()).toBe(1);
  });

  it('a write that joins it and fails undoes only itself; the receive is still committed', async () => {
    const { agentDb, agentQueue, seen } = await setUp([1]);
    await agentQueue.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    expect(() =>
      withWriteLock(agentDb, () => {
        agentDb.prepare("UPDATE jobs SET updated_at = 'x'").run();
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(agentDb.inTransaction).toBe(false);
    expect(seen.get()).toBe(1);
    expect(agentDb.prepare("SELECT COUNT(*) FROM jobs WHERE updated_at = 'x'").pluck().get()).toBe(0);
  });

  it('once committed by itself, another connection receives the rest, never what it delivered', async () => {
    const { agentQueue, other, name } = await setUp([1, 2]);
    const otherQueue = await new LocalQueueProvider(other).open(name, T);
    await agentQueue.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    await turn(); // the commit that comes by itself (a write of the other before it would wait for the lock)
    const got = await otherQueue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 60 });
    expect(got.map((g) => g.task)).toEqual([2]); // task 1 stays delivered to the first
  });

  it('closed before its commit (a crash): the receive never happened, the message is visible again', async () => {
    const { agentDb, agentQueue, other, name, seen } = await setUp([1]);
    await agentQueue.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    agentDb.close(); // SQLite rolls an open transaction back when its connection goes
    await turn();
    expect(seen.get()).toBe(0);
    const again = await (await new LocalQueueProvider(other).open(name, T)).receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    expect(again.map((g) => g.task)).toEqual([1]);
  });

  it('commitLeftOpen commits it at once (the backend does so before it closes)', async () => {
    const { agentDb, agentQueue, seen } = await setUp([1]);
    await agentQueue.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 60 });
    commitLeftOpen(agentDb);
    expect(seen.get()).toBe(1);
    commitLeftOpen(agentDb); // nothing left: no-op
  });
});
