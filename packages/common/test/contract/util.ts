/** Helpers shared by the contract suites. */
import { randomBytes } from 'node:crypto';

let counter = 0;

/** A job name no other test (or earlier run against a shared backend) uses. */
export function uniqueJob(tag: string): string {
  counter += 1;
  return `ct-${tag}-${counter}-${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retry `check` until it stops throwing or `timeoutMs` passes (eventually consistent backends). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 5000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() >= end) throw e;
      await sleep(everyMs);
    }
  }
}

export interface ContractOptions {
  /** Run the tests of the suite concurrently (they use separate jobs; faster when the backend is). */
  concurrent?: boolean;
  /**
   * The queue is an SQS standard queue: delivery is at least once, so concurrent receivers may,
   * rarely, both get one message (moto does it too). gq's task lease makes that harmless; the
   * contract then checks that every message arrives and duplicates stay rare.
   */
  atLeastOnce?: boolean;
}
