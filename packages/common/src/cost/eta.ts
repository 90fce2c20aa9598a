/**
 * When a job should end (`gq status`'s ETA), from the figures the cost estimate uses: the mean run
 * time of the finished attempts (the instance records' tasksRun and taskSeconds), the tasks left
 * of each instance type (queued, and how long each running one has run) and the slots of its
 * live workers. Each type's workers run only that type's tasks, so the job ends when its slowest
 * type does: the ETA is the max over the types. Pure.
 */
import type { InstanceRecord } from '../job/model.js';
import { isRunning, meanTaskSeconds, type TypeWork } from './spend.js';

export interface EtaInput {
  instances: readonly InstanceRecord[];
  now: number;
  /** The job's instance types. */
  types: readonly string[];
  /** The tasks left of a type. */
  work: (instanceType: string) => TypeWork;
  /** Tasks one worker of the type runs at once. */
  slots: (instanceType: string) => number;
}

/** One type's part: known, or why not. */
export type TypeEta =
  | { instanceType: string; known: true; seconds: number; finishedTasks: number; meanTaskSeconds: number; slots: number }
  | { instanceType: string; known: false; why: 'no-task-finished' | 'no-worker'; tasksLeft: number };

export interface Eta {
  /** Seconds from `now` until the last task should end. */
  seconds: number;
  /** That moment, ISO. */
  at: string;
  /** The finished attempts the estimate rests on, their mean run time, and the slots of the live workers (all types). */
  finishedTasks: number;
  meanTaskSeconds: number;
  slots: number;
  perType: TypeEta[];
}

/**
 * Wall-clock seconds until `queued` tasks of `mean` seconds and the running ones (each has
 * `mean - ran` left) are done on `capacity` slots: the work spread over the slots, but never less
 * than the longest running task still needs, nor (when tasks wait) than the first free slot plus
 * one whole task.
 */
export function secondsToFinish(queued: number, running: readonly number[], mean: number, capacity: number): number {
  const left = running.map((ran) => Math.max(0, mean - ran));
  const total = queued * mean + left.reduce((a, b) => a + b, 0);
  const cap = Math.max(1, capacity);
  const firstFree = left.length < cap ? 0 : Math.min(...left);
  return Math.max(total / cap, ...left, queued > 0 ? firstFree + mean : 0);
}

export function typeEta(type: string, input: EtaInput): TypeEta {
  const recs = input.instances.filter((r) => r.instanceType === type);
  const work = input.work(type);
  const tasksLeft = work.queued + work.running.length;
  const finishedTasks = recs.reduce((a, r) => a + (r.tasksRun ?? 0), 0);
  const mean = meanTaskSeconds(recs);
  const slots = recs.filter(isRunning).length * Math.max(1, input.slots(type));
  if (tasksLeft === 0) return { instanceType: type, known: true, seconds: 0, finishedTasks, meanTaskSeconds: mean ?? 0, slots };
  if (mean === undefined) return { instanceType: type, known: false, why: 'no-task-finished', tasksLeft };
  if (slots === 0) return { instanceType: type, known: false, why: 'no-worker', tasksLeft };
  return { instanceType: type, known: true, seconds: secondsToFinish(work.queued, work.running, mean, slots), finishedTasks, meanTaskSeconds: mean, slots };
}

/**
 * The job's ETA, or undefined when it cannot be known: a type with tasks left has no finished
 * attempt yet, or no live worker to run them. A job with nothing left has an ETA of 0 (now).
 */
export function jobEta(input: EtaInput): { eta: Eta | undefined; perType: TypeEta[] } {
  const perType = input.types.map((t) => typeEta(t, input));
  if (perType.some((t) => !t.known)) return { eta: undefined, perType };
  const known = perType as Extract<TypeEta, { known: true }>[];
  const seconds = Math.max(0, ...known.map((t) => t.seconds));
  const finishedTasks = known.reduce((a, t) => a + t.finishedTasks, 0);
  const runSeconds = known.reduce((a, t) => a + t.finishedTasks * t.meanTaskSeconds, 0);
  return {
    eta: {
      seconds,
      at: new Date(input.now + seconds * 1000).toISOString(),
      finishedTasks,
      meanTaskSeconds: finishedTasks > 0 ? runSeconds / finishedTasks : 0,
      slots: known.reduce((a, t) => a + t.slots, 0),
      perType,
    },
    perType,
  };
}
