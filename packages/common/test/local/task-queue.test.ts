/** Local-only queue behaviour: SQS limits, typed errors, several connections, large sends. */
import { describe, expect, it } from 'vitest';
import {
  LocalQueueProvider,
  MAX_VISIBILITY_SECONDS,
  QueueNotFoundError,
  ReceiptInvalidError,
  openDb,
  type Db,
} from '../../src/local/index.js';
import { testDb } from './helpers.js';

const { dir, connect, job } = testDb('queue', 'q');
const T = 'local';

/** A provider with a hand-driven clock. */
function manual(start = 1_700_000_000_000) {
  const clock = { now: start };
  const queues = new LocalQueueProvider(connect(), { clock: () => clock.now });
  return { clock, queues };
}

describe('LocalTaskQueue', () => {
  it('open of a missing queue, and send to or receive from a removed one, throw QueueNotFoundError', async () => {
    const queues = new LocalQueueProvider(connect());
    await expect(queues.open('nope', T)).rejects.toBeInstanceOf(QueueNotFoundError);
    const name = job('removed');
    const q = await queues.ensure(name, T, { visibilitySeconds: 30, maxReceiveCount: 3 });
    await queues.remove(name, T);
    await expect(q.send([1])).rejects.toBeInstanceOf(QueueNotFoundError);
    // As SQS answers QueueDoesNotExist: a worker of a cleaned job learns that nothing can come.
    await expect(q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 1 })).rejects.toBeInstanceOf(QueueNotFoundError);
  });

  it('typed receipt errors: malformed, stale after redelivery, after delete; release too', async () => {
    const { clock, queues } = manual();
    const q = await queues.ensure(job('receipt'), T, { visibilitySeconds: 10, maxReceiveCount: 5 });
    await expect(q.extend('garbage', 5)).rejects.toBeInstanceOf(ReceiptInvalidError);
    await expect(q.delete('garbage')).rejects.toBeInstanceOf(ReceiptInvalidError);
    await q.send([1]);
    const [a] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 });
    clock.now += 11_000;
    const [b] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 });
    expect(b!.receiveCount).toBe(2);
    await expect(q.extend(a!.receipt, 5)).rejects.toBeInstanceOf(ReceiptInvalidError);
    await expect(q.release(a!.receipt)).rejects.toBeInstanceOf(ReceiptInvalidError);
    await q.delete(a!.receipt); // ignored
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
    await q.delete(b!.receipt);
    await q.delete(b!.receipt); // twice is fine
    await expect(q.extend(b!.receipt, 5)).rejects.toBeInstanceOf(ReceiptInvalidError);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('extend on a delivery whose timeout ran out (not yet received again) hides it again', async () => {
    const { clock, queues } = manual();
    const q = await queues.ensure(job('late-extend'), T, { visibilitySeconds: 10, maxReceiveCount: 5 });
    await q.send([1]);
    const [a] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 });
    clock.now += 20_000;
    expect((await q.depth()).visible).toBe(1);
    await q.extend(a!.receipt, 30);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
  });

  it('a delivery stays hidden at most 12 hours from its receive (extend and receive are clamped)', async () => {
    const { clock, queues } = manual();
    const q = await queues.ensure(job('cap'), T, { visibilitySeconds: 30, maxReceiveCount: 5 });
    await q.send([1]);
    const t0 = clock.now;
    const [m] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 * 3600 });
    clock.now = t0 + 11 * 3600_000;
    await q.extend(m!.receipt, 10 * 3600); // would reach 21 h: clamped to 12 h after the receive
    clock.now = t0 + MAX_VISIBILITY_SECONDS * 1000 - 1;
    expect(await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
    clock.now = t0 + MAX_VISIBILITY_SECONDS * 1000;
    const [again] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 * 24 * 3600 });
    expect(again!.receiveCount).toBe(2);
    // A new delivery has its own 12 hours; the receive's own visibility was clamped to them.
    clock.now += MAX_VISIBILITY_SECONDS * 1000 - 1;
    expect(await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
    clock.now += 1;
    expect((await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 30 }))[0]!.receiveCount).toBe(3);
  });

  it('receive returns at most 10 messages per call', async () => {
    const queues = new LocalQueueProvider(connect());
    const q = await queues.ensure(job('batch'), T, { visibilitySeconds: 30, maxReceiveCount: 5 });
    await q.send(Array.from({ length: 25 }, (_, i) => i + 1));
    const got = await q.receive({ max: 100, waitSeconds: 0, visibilitySeconds: 30 });
    expect(got).toHaveLength(10);
    expect(got.map((m) => m.task)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('dead-lettering inside a batch still fills the batch with deliverable messages', async () => {
    const { clock, queues } = manual();
    const q = await queues.ensure(job('dlq-batch'), T, { visibilitySeconds: 5, maxReceiveCount: 1 });
    await q.send([1, 2]);
    await q.receive({ max: 2, waitSeconds: 0, visibilitySeconds: 5 }); // both received once
    clock.now += 6000;
    await q.send([3, 4]);
    const got = await q.receive({ max: 2, waitSeconds: 0, visibilitySeconds: 5 });
    expect(got.map((m) => m.task)).toEqual([3, 4]);
    expect(await q.deadLetters()).toEqual([1, 2]);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 2, delayed: 0 });
  });

  it('ensure updates the queue options', async () => {
    const { clock, queues } = manual();
    const name = job('reopts');
    await queues.ensure(name, T, { visibilitySeconds: 5, maxReceiveCount: 1 });
    const q = await queues.ensure(name, T, { visibilitySeconds: 5, maxReceiveCount: 3 });
    await q.send([1]);
    for (let i = 1; i <= 3; i++) {
      expect((await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 5 }))[0]!.receiveCount).toBe(i);
      clock.now += 6000;
    }
    expect(await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 5 })).toEqual([]);
    expect(await q.deadLetters()).toEqual([1]);
  });

  it('a release with a delay counts as in flight (as SQS ChangeMessageVisibility does)', async () => {
    const { clock, queues } = manual();
    const q = await queues.ensure(job('release-delay'), T, { visibilitySeconds: 30, maxReceiveCount: 5 });
    await q.send([1]);
    const [m] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 30 });
    await q.release(m!.receipt, 60);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
    clock.now += 60_000;
    expect(await q.depth()).toEqual({ visible: 1, inFlight: 0, delayed: 0 });
  });

  it('purge keeps the dead letters; remove drops everything', async () => {
    const { clock, queues } = manual();
    const name = job('purge-dlq');
    const q = await queues.ensure(name, T, { visibilitySeconds: 1, maxReceiveCount: 1 });
    await q.send([1, 2]);
    await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 1 });
    clock.now += 2000;
    await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 1 }); // 1 → DLQ, 2 delivered
    await q.purge();
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await q.deadLetters()).toEqual([1]);
    await queues.remove(name, T);
    expect(await q.deadLetters()).toEqual([]);
  });

  it('a long poll in progress ends with [] when the connection closes', async () => {
    const db = openDb(dir.home);
    const queues = new LocalQueueProvider(db);
    const q = await queues.ensure(job('closing'), T, { visibilitySeconds: 30, maxReceiveCount: 5 });
    const t0 = Date.now();
    const pending = q.receive({ max: 1, waitSeconds: 10, visibilitySeconds: 30 });
    await new Promise((r) => setTimeout(r, 150));
    db.close();
    expect(await pending).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(5000); // at the close, not after the 10 s wait (margin for a busy machine)
  });

  it('several connections receiving at once never share a delivery', async () => {
    const name = job('conns');
    const sender = new LocalQueueProvider(connect());
    const total = 600;
    await (await sender.ensure(name, T, { visibilitySeconds: 60, maxReceiveCount: 5 })).send(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    const receivers = await Promise.all(
      Array.from({ length: 4 }, async () => new LocalQueueProvider(connect(), { pollMs: 5 }).open(name, T)),
    );
    const seen: number[][] = receivers.map(() => []);
    await Promise.all(
      receivers.map(async (q, i) => {
        for (;;) {
          const got = await q.receive({ max: 1 + i * 3, waitSeconds: 0.05, visibilitySeconds: 60 });
          if (got.length === 0) return;
          for (const m of got) {
            expect(m.receiveCount).toBe(1);
            seen[i]!.push(m.task);
            if (m.task % 2 === 0) await q.delete(m.receipt);
          }
          await new Promise((r) => setImmediate(r)); // interleave the connections
        }
      }),
    );
    const all = seen.flat();
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    expect(seen.filter((s) => s.length > 0).length).toBeGreaterThan(1);
    expect(await receivers[0]!.depth()).toEqual({ visible: 0, inFlight: total / 2, delayed: 0 });
  });

  // Speed: bench/local-stores.mjs (npm run bench:stores), against a baseline of the same run.
  it('100,000 messages: one send, receives and deletes, exact depth', async () => {
    const queues = new LocalQueueProvider(connect());
    const q = await queues.ensure(job('big'), T, { visibilitySeconds: 60, maxReceiveCount: 3 });
    const tasks = Array.from({ length: 100_000 }, (_, i) => i + 1);
    await q.send(tasks);
    expect(await q.depth()).toEqual({ visible: 100_000, inFlight: 0, delayed: 0 });
    const rounds = 200;
    for (let i = 0; i < rounds; i++) {
      const got = await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 60 });
      for (const m of got) await q.delete(m.receipt);
    }
    expect((await q.depth()).visible).toBe(100_000 - rounds * 10);
  });

  describe('deleteBatchMs (the agent\'s side)', () => {
    /** The rows of a queue's messages as another connection (another process) sees them. */
    const rowsOf = (db: Db, name: string) =>
      db.prepare('SELECT task FROM messages WHERE queue = (SELECT id FROM queues WHERE job = ?) ORDER BY task').all(name).map((r) => (r as { task: number }).task);

    /** A queue holding its deletes for `ms`, with messages for tasks 1 to 3, and another connection. */
    async function holding(tag: string, ms: number) {
      const name = job(tag);
      const q = await new LocalQueueProvider(connect(), { deleteBatchMs: ms }).ensure(name, T, { visibilitySeconds: 60, maxReceiveCount: 3 });
      await q.send([1, 2, 3]);
      return { name, q, other: connect() };
    }
    const one = { max: 1, waitSeconds: 0, visibilitySeconds: 60 };

    it('a delete is held until the next receive, which writes it in its own transaction', async () => {
      const { name, q, other } = await holding('held', 60_000);
      const [a] = await q.receive(one);
      await q.delete(a!.receipt);
      await expect(q.delete('garbage')).rejects.toBeInstanceOf(ReceiptInvalidError); // still checked at once
      expect(rowsOf(other, name)).toEqual([1, 2, 3]);
      const [b] = await q.receive(one);
      expect(b!.task).toBe(2);
      expect(rowsOf(other, name)).toEqual([2, 3]);
      const [c] = await q.receive(one);
      await q.delete(b!.receipt);
      await q.delete(c!.receipt);
      // Nothing visible to receive: the held deletes go out all the same.
      expect(await q.receive(one)).toEqual([]);
      expect(rowsOf(other, name)).toEqual([]);
    });

    it('depth, flush and the timer write the held deletes; a stale receipt is still ignored', async () => {
      const { name, q, other } = await holding('flush', 50);
      const got = await q.receive({ max: 3, waitSeconds: 0, visibilitySeconds: 60 });
      await q.delete(got[0]!.receipt);
      expect(await q.depth()).toEqual({ visible: 0, inFlight: 2, delayed: 0 });
      await q.delete(got[1]!.receipt);
      await q.flush!();
      expect(rowsOf(other, name)).toEqual([3]);
      await q.delete(got[2]!.receipt);
      await q.delete(got[2]!.receipt); // twice: the second finds nothing, as a stale receipt
      await new Promise((r) => setTimeout(r, 150));
      expect(rowsOf(other, name)).toEqual([]);
    });

    it('a held delete that never goes out (the process died) only lets the message come back', async () => {
      const name = job('lost');
      const { clock, queues: plain } = manual();
      const q0 = await plain.ensure(name, T, { visibilitySeconds: 10, maxReceiveCount: 5 });
      await q0.send([1]);
      const holding = new LocalQueueProvider(connect(), { clock: () => clock.now, deleteBatchMs: 60_000 });
      const q = await holding.open(name, T);
      const [a] = await q.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 });
      await q.delete(a!.receipt); // held; this queue object is then dropped without a flush
      clock.now += 11_000;
      const [again] = await q0.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 10 });
      expect(again).toMatchObject({ task: 1, receiveCount: 2 });
    });
  });
});
