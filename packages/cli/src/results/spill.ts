/**
 * A spill file: values written one JSON line each while the task pages are read, and read back
 * (as often as needed) once they are all written, so that what gq results holds does not grow
 * with the number of tasks (tasks.csv rows, the download plan). Also the bounded loop that works
 * through such a stream a few at a time.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export class Spill<T> {
  private readonly out: WriteStream;
  /** A write that failed (a full disk): raised by the next add or values. */
  private failed: Error | undefined;
  /** Values added so far. */
  count = 0;

  /** `file` must not exist yet ('wx': never through a link or a file that appeared; EEXIST here). */
  constructor(readonly file: string) {
    this.out = createWriteStream(file, { fd: openSync(file, 'wx') });
    this.out.on('error', (e) => (this.failed ??= e));
  }

  async add(value: T): Promise<void> {
    if (this.failed) throw this.failed;
    this.count++;
    if (!this.out.write(JSON.stringify(value) + '\n')) await once(this.out, 'drain');
  }

  /** The values in the order added (the file is closed for writing first). */
  async *values(): AsyncGenerator<T> {
    if (!this.out.closed) {
      this.out.end();
      await once(this.out, 'close');
    }
    if (this.failed) throw this.failed;
    const lines = createInterface({ input: createReadStream(this.file), crlfDelay: Infinity });
    for await (const line of lines) yield JSON.parse(line) as T;
  }

  /** Close the file without reading it (an error on the way); the caller removes it. */
  abandon(): void {
    this.out.destroy();
  }
}

/**
 * Run `fn` on every item of `items`, `limit` at a time: that many workers pulling from the one
 * iterator (an async generator queues their calls), so nothing waits in memory but the items in
 * hand. The first error stops the others taking more, and is thrown once those in hand are done
 * (nothing is left running behind the caller's back).
 */
export async function forEachLimited<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.asyncIterator]();
  let failed = false;
  const worker = async (): Promise<void> => {
    try {
      while (!failed) {
        const next = await it.next();
        if (next.done) return;
        await fn(next.value);
      }
    } catch (e) {
      failed = true;
      throw e;
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.max(1, limit) }, worker));
  await it.return?.(undefined);
  const error = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (error) throw error.reason;
}
