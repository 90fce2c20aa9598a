/**
 * The task lifecycle, as pure data and functions (no I/O).
 *
 *   QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED
 *   RUNNING → QUEUED   (a failed attempt with attempts left, or a released task)
 *   QUEUED  → CANCELLED
 *   FAILED  → QUEUED   (`gq retry --failed`)
 *   RUNNING → RUNNING  (a lost worker's expired lease taken over by another worker)
 */
export const TASK_STATES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

/** Lower-case names used for counters and JSON output. */
export type CountKey = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type Counts = Record<CountKey, number>;
export const COUNT_KEYS: readonly CountKey[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export function countKey(state: TaskState): CountKey {
  return state.toLowerCase() as CountKey;
}

export function emptyCounts(): Counts {
  return { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
}

export const TASK_EVENTS = [
  'claim', // a worker takes a queued task
  'takeover', // a worker takes a running task whose lease expired (its worker was lost)
  'succeed',
  'fail', // final failure (no attempts left, or not retryable)
  'retry', // a failed attempt with attempts left: back to the queue
  'release', // worker gives the task back unrun (SIGTERM, Spot interruption)
  'cancel',
  'resubmit', // gq retry --failed
] as const;
export type TaskEvent = (typeof TASK_EVENTS)[number];

const TRANSITIONS: Readonly<Record<TaskEvent, Partial<Record<TaskState, TaskState>>>> = {
  claim: { QUEUED: 'RUNNING' },
  takeover: { RUNNING: 'RUNNING' },
  succeed: { RUNNING: 'SUCCEEDED' },
  fail: { RUNNING: 'FAILED', QUEUED: 'FAILED' },
  retry: { RUNNING: 'QUEUED' },
  release: { RUNNING: 'QUEUED' },
  cancel: { QUEUED: 'CANCELLED', RUNNING: 'CANCELLED' },
  resubmit: { FAILED: 'QUEUED', CANCELLED: 'QUEUED' },
};

/** The state that `event` leads to from `from`, or undefined when the transition is illegal. */
export function nextState(from: TaskState, event: TaskEvent): TaskState | undefined {
  return TRANSITIONS[event][from];
}

/** The states from which `event` is legal (used to build conditional writes). */
export function sourcesOf(event: TaskEvent): TaskState[] {
  return Object.keys(TRANSITIONS[event]) as TaskState[];
}

export function isFinal(state: TaskState): boolean {
  return FINAL_STATES.has(state);
}

/**
 * Counter changes of a write: the task counts, and `moved:<instance type>` when a task of that
 * type moved to on-demand (job/on-demand.ts; the job's `movedToOnDemand`).
 */
export type CounterDelta = Partial<Counts> & { [moved: `moved:${string}`]: number | undefined };

/** Counter changes for a transition: -1 on the old state, +1 on the new (nothing when equal). */
export function counterDelta(from: TaskState, to: TaskState): CounterDelta {
  if (from === to) return {};
  return { [countKey(from)]: -1, [countKey(to)]: 1 } as CounterDelta;
}

/** Add `delta` into `into`, counter by counter. */
export function addDelta(into: CounterDelta, delta: CounterDelta): void {
  for (const [k, v] of Object.entries(delta) as [keyof CounterDelta, number | undefined][]) if (v) into[k] = (into[k] ?? 0) + v;
}
