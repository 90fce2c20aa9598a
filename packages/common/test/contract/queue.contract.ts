/**
 * Behaviour every QueueProvider must have (SQS standard queue with a redrive policy). Run by
 * test/local/contract.test.ts on SQLite and by the AWS tests on moto. Each test uses its own job
 * name, so the suites can share one backend. Timing tests use visibility timeouts of 1–2 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueProvider, ReceivedMessage, TaskQueue } from '../../src/ports.js';
import { QueueNotFoundError } from '../../src/port-errors.js';
import { eventually, sleep, uniqueJob, type ContractOptions } from './util.js';

export type { ContractOptions };

export interface QueueFixture {
  queues: QueueProvider;
  cleanup(): Promise<void>;
}

const TYPE = 'test.small';

/** Receive until `n` messages arrived (SQS may return fewer than asked per call) or time runs out. */
export async function receiveN(
  q: TaskQueue,
  n: number,
  opts: { visibilitySeconds?: number; timeoutMs?: number } = {},
): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  const end = Date.now() + (opts.timeoutMs ?? 5000);
  while (out.length < n && Date.now() < end) {
    out.push(
      ...(await q.receive({ max: Math.min(10, n - out.length), waitSeconds: 1, visibilitySeconds: opts.visibilitySeconds ?? 30 })),
    );
  }
  return out;
}

export function queueContract(name: string, make: () => Promise<QueueFixture>, opts: ContractOptions = {}): void {
  (opts.concurrent ? describe.concurrent : describe)(`QueueProvider contract: ${name}`, () => {
    let fx: QueueFixture;
    const made: { job: string; type: string }[] = [];

    beforeAll(async () => {
      fx = await make();
    });
    afterAll(async () => {
      for (const m of made) await fx.queues.remove(m.job, m.type).catch(() => {});
      await fx.cleanup();
    });

    async function fresh(tag: string, opts: { visibilitySeconds?: number; maxReceiveCount?: number } = {}) {
      const job = uniqueJob(tag);
      made.push({ job, type: TYPE });
      return fx.queues.ensure(job, TYPE, {
        visibilitySeconds: opts.visibilitySeconds ?? 30,
        maxReceiveCount: opts.maxReceiveCount ?? 5,
      });
    }

    it('ensure is idempotent and open finds the queue; remove deletes it', async () => {
      const q = await fresh('ensure');
      expect(q.job).toMatch(/^ct-ensure-/);
      expect(q.instanceType).toBe(TYPE);
      const again = await fx.queues.ensure(q.job, TYPE, { visibilitySeconds: 30, maxReceiveCount: 5 });
      await again.send([1]);
      const opened = await fx.queues.open(q.job, TYPE);
      const got = await receiveN(opened, 1);
      expect(got.map((m) => m.task)).toEqual([1]);
      await fx.queues.remove(q.job, TYPE);
      await fx.queues.remove(q.job, TYPE); // missing is not an error
      await expect(fx.queues.open(q.job, TYPE)).rejects.toThrow();
      // A worker still holding the queue learns that it is gone (the job was cleaned).
      await expect(opened.receive({ max: 1, waitSeconds: 1, visibilitySeconds: 30 })).rejects.toBeInstanceOf(QueueNotFoundError);
      await expect(opened.send([2])).rejects.toBeInstanceOf(QueueNotFoundError);
    });

    it('send / receive / delete', async () => {
      const q = await fresh('basic');
      await q.send([1, 2, 3]);
      const got = await receiveN(q, 3);
      expect(got.map((m) => m.task).sort()).toEqual([1, 2, 3]);
      for (const m of got) {
        expect(m.receiveCount).toBe(1);
        expect(typeof m.receipt).toBe('string');
      }
      expect(new Set(got.map((m) => m.receipt)).size).toBe(3);
      // Hidden while in flight.
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
      for (const m of got) await q.delete(m.receipt);
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
    });

    it('an empty send is a no-op; a large send arrives whole', async () => {
      const q = await fresh('large');
      await q.send([]);
      const tasks = Array.from({ length: 250 }, (_, i) => i + 1);
      await q.send(tasks);
      await eventually(async () => expect((await q.depth()).visible).toBe(250));
    });

    it('long poll returns as soon as a message arrives', async () => {
      const q = await fresh('longpoll');
      const t0 = Date.now();
      const pending = q.receive({ max: 1, waitSeconds: 5, visibilitySeconds: 30 });
      await sleep(300);
      await q.send([9]);
      const got = await pending;
      expect(got.map((m) => m.task)).toEqual([9]);
      expect(Date.now() - t0).toBeLessThan(4000);
    });

    it('an empty long poll waits about waitSeconds and returns []', async () => {
      const q = await fresh('empty');
      const t0 = Date.now();
      expect(await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 })).toEqual([]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(Date.now() - t0).toBeLessThan(3000);
    });

    it('visibility timeout expiry redelivers with receiveCount 2 and a new receipt', async () => {
      const q = await fresh('expiry', { visibilitySeconds: 1 });
      await q.send([7]);
      // Hidden for 2 s: the check that it is hidden has that long on a slow machine; receiveN then
      // polls (up to 5 s) until it is back.
      const [first] = await receiveN(q, 1, { visibilitySeconds: 2 });
      expect(first).toMatchObject({ task: 7, receiveCount: 1 });
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 1 })).toEqual([]);
      const [second] = await receiveN(q, 1, { visibilitySeconds: 30 });
      expect(second).toMatchObject({ task: 7, receiveCount: 2 });
      expect(second!.receipt).not.toBe(first!.receipt);
    });

    it('extend keeps a message hidden past its first timeout', async () => {
      const q = await fresh('extend', { visibilitySeconds: 1 });
      await q.send([5]);
      const [m] = await receiveN(q, 1, { visibilitySeconds: 1 });
      await q.extend(m!.receipt, 4);
      await sleep(1300);
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
      await eventually(async () => expect(await q.depth()).toMatchObject({ visible: 0, inFlight: 1 }));
      await q.delete(m!.receipt);
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
    });

    it('release makes a message visible again (now, or after a delay)', async () => {
      const q = await fresh('release');
      await q.send([3]);
      const [m] = await receiveN(q, 1);
      await q.release(m!.receipt);
      const [again] = await receiveN(q, 1);
      expect(again).toMatchObject({ task: 3, receiveCount: 2 });

      await q.release(again!.receipt, 2);
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
      const [third] = await receiveN(q, 1); // polls until the delay has passed
      expect(third).toMatchObject({ task: 3, receiveCount: 3 });
      await q.delete(third!.receipt);
    });

    it('after a redelivery the newest receipt extends and deletes the message', async () => {
      // What an older receipt does then is not part of the contract: SQS documents that a delete
      // with it "might not" delete, and moto honours every receipt a message ever had. The local
      // queue ignores a stale delete and rejects a stale extend (test/local/task-queue.test.ts).
      const q = await fresh('newest', { visibilitySeconds: 1 });
      await q.send([4]);
      const [old] = await receiveN(q, 1, { visibilitySeconds: 1 });
      await sleep(1200);
      // Hidden 2 s, so that the extend comes well before that runs out, and the check after it.
      const [cur] = await receiveN(q, 1, { visibilitySeconds: 2 });
      expect(cur!.receiveCount).toBe(2);
      expect(cur!.receipt).not.toBe(old!.receipt);
      await q.extend(cur!.receipt, 30);
      await sleep(2200);
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
      await q.delete(cur!.receipt);
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
    });

    it(`concurrent receivers get every message, ${opts.atLeastOnce ? 'duplicates only rarely (at-least-once)' : 'never one twice'} within one visibility window`, async () => {
      const q = await fresh('concurrent');
      const n = 60;
      await q.send(Array.from({ length: n }, (_, i) => i + 1));
      const handles = [q, ...(await Promise.all([1, 2, 3].map(() => fx.queues.open(q.job, TYPE))))];
      const seen: number[] = [];
      await Promise.all(
        handles.map(async (h) => {
          for (let empty = 0; empty < 2; ) {
            const got = await h.receive({ max: 3, waitSeconds: 1, visibilitySeconds: 60 });
            if (got.length === 0) empty++;
            for (const m of got) seen.push(m.task);
          }
        }),
      );
      expect(new Set(seen).size).toBe(n);
      if (opts.atLeastOnce) expect(seen.length - n).toBeLessThanOrEqual(2);
      else expect(seen.length).toBe(n);
    });

    it('a message received more than maxReceiveCount times goes to the dead-letter queue', async () => {
      const q = await fresh('dlq', { visibilitySeconds: 1, maxReceiveCount: 2 });
      await q.send([11, 12]);
      // Hidden 2 s: task 12's delete comes long before it could show again.
      const first = await receiveN(q, 2, { visibilitySeconds: 2 });
      expect(first.map((m) => m.receiveCount)).toEqual([1, 1]);
      // Task 12 is done at once; task 11 keeps failing (receiveN polls until it is back).
      await q.delete(first.find((m) => m.task === 12)!.receipt);
      const second = await receiveN(q, 1, { visibilitySeconds: 1 });
      expect(second).toMatchObject([{ task: 11, receiveCount: 2 }]);
      await sleep(1200);
      // The third receive moves it to the DLQ instead of delivering it.
      expect(await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 1 })).toEqual([]);
      await eventually(async () => expect(await q.deadLetters()).toEqual([11]));
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
    });

    it('deadLetters names each task once, in order, however many of its messages were dead-lettered', async () => {
      const q = await fresh('dlq-twice', { visibilitySeconds: 1, maxReceiveCount: 1 });
      await q.send([8, 7, 7]); // task 7 sent twice (a resend, as reconcile does)
      // Each message is received once, then dead-lettered by the next receive that finds it.
      await eventually(
        async () => {
          await q.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 1 });
          expect(await q.deadLetters()).toEqual([7, 8]);
          expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
        },
        20_000,
        1200,
      );
    });

    it('depth counts visible and in-flight messages', async () => {
      const q = await fresh('depth');
      await q.send([1, 2, 3, 4]);
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 4, inFlight: 0, delayed: 0 }));
      const got = await receiveN(q, 1);
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 3, inFlight: 1, delayed: 0 }));
      await q.delete(got[0]!.receipt);
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 3, inFlight: 0, delayed: 0 }));
    });

    it('purge drops every message', async () => {
      const q = await fresh('purge');
      await q.send([1, 2, 3, 4, 5]);
      await receiveN(q, 1);
      await q.purge();
      await eventually(async () => expect(await q.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 }));
      expect(await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })).toEqual([]);
      // The queue still works after a purge.
      await q.send([6]);
      expect((await receiveN(q, 1)).map((m) => m.task)).toEqual([6]);
    });

    it('queues of different jobs and instance types are separate', async () => {
      const a = await fresh('sep');
      const b = await fx.queues.ensure(a.job, 'other.type', { visibilitySeconds: 30, maxReceiveCount: 5 });
      made.push({ job: a.job, type: 'other.type' });
      const c = await fresh('sep');
      await a.send([1]);
      await b.send([2]);
      await c.send([3]);
      expect((await receiveN(a, 1)).map((m) => m.task)).toEqual([1]);
      expect((await receiveN(b, 1)).map((m) => m.task)).toEqual([2]);
      expect((await receiveN(c, 1)).map((m) => m.task)).toEqual([3]);
    });

    it('the on-demand pool of a type is a queue of its own, opened and removed apart (job/on-demand.ts)', async () => {
      const main = await fresh('pool');
      const od = await fx.queues.ensure(main.job, TYPE, { visibilitySeconds: 30, maxReceiveCount: 5 }, 'on-demand');
      expect([od.instanceType, od.pool]).toEqual([TYPE, 'on-demand']);
      await main.send([1]);
      await (await fx.queues.open(main.job, TYPE, 'on-demand')).send([2]);
      expect((await receiveN(od, 1)).map((m) => m.task)).toEqual([2]);
      expect((await receiveN(main, 1)).map((m) => m.task)).toEqual([1]);
      await fx.queues.remove(main.job, TYPE, 'on-demand');
      await expect(fx.queues.open(main.job, TYPE, 'on-demand')).rejects.toBeInstanceOf(QueueNotFoundError);
      await fx.queues.open(main.job, TYPE); // the type's own stays
    });
  });
}
