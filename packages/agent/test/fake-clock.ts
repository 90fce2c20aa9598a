/**
 * A Clock for the agent's tests: its time moves only when the code under test sleeps (the sleep
 * returns at once, the time having jumped) or when the test advances it. Timers set with `every`
 * and events set with `at` fire, in order of their time, as the time passes them.
 */
import type { Clock } from '../src/clock.js';

interface Timer {
  due: number;
  /** Repeats every this many ms; a one-off when undefined. */
  every?: number;
  fn: () => void;
}

/** Let the promises a timer started run (SQLite calls are synchronous, their answers are not). */
const settle = () => new Promise<void>((r) => setImmediate(r));

export class FakeClock implements Clock {
  private t: number;
  private readonly timers: Timer[] = [];
  /** Every sleep the code under test asked for, ms, in order. */
  readonly sleeps: number[] = [];

  constructor(start = Date.now()) {
    this.t = start;
  }

  /** A bound function, to hand to openLocalBackend({ clock }). */
  readonly now = (): number => this.t;

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (!signal?.aborted) await this.advance(ms);
  }

  every(ms: number, fn: () => void): () => void {
    const timer: Timer = { due: this.t + ms, every: ms, fn };
    this.timers.push(timer);
    return () => this.drop(timer);
  }

  /** Run `fn` once, when the time reaches `time` (epoch ms). */
  at(time: number, fn: () => void): void {
    this.timers.push({ due: time, fn });
  }

  /** Move the time on by `ms`, firing what falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.t + Math.max(0, ms);
    for (;;) {
      const next = this.timers.filter((x) => x.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.t = Math.max(this.t, next.due);
      if (next.every === undefined) this.drop(next);
      else next.due += next.every;
      next.fn();
      await settle();
    }
    this.t = Math.max(this.t, end);
    await settle();
  }

  private drop(timer: Timer): void {
    const i = this.timers.indexOf(timer);
    if (i >= 0) this.timers.splice(i, 1);
  }
}
