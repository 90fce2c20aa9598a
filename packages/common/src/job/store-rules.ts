/**
 * What a StatusStore checks of its arguments before it reads or writes, the same on both
 * backends: createJob's task numbers and that a job already under the name is this same job (a
 * submit run again); listTasks's states and limit.
 */
import { GqError, UserError } from '../errors.js';
import { JobExistsError } from '../port-errors.js';
import type { JobSpec, NewTask } from './model.js';
import { TASK_STATES, type TaskState } from './states.js';

/** Task numbers are whole numbers from 1, each at most once in one call (a bug otherwise). */
export function checkNewTasks(job: string, tasks: readonly NewTask[]): void {
  const seen = new Set<number>();
  for (const t of tasks) {
    if (!Number.isInteger(t.task) || t.task < 1) throw new GqError(`invalid task number ${t.task}`);
    if (seen.has(t.task)) throw new GqError(`task ${t.task} appears twice in job ${job}`);
    seen.add(t.task);
  }
}

/** The job recorded under `spec.name` is the one being created again (same code, same size), else JobExistsError. */
export function checkSameJob(old: Pick<JobSpec, 'total' | 'codeKey' | 'createdAt'>, spec: JobSpec): void {
  if (old.codeKey !== spec.codeKey || old.total !== spec.total) throw new JobExistsError(old, spec);
}

/** Every state asked for is a task state (a UserError names the first that is not). */
export function checkTaskStates(states: readonly TaskState[]): void {
  for (const s of states) if (!TASK_STATES.includes(s)) throw new UserError(`Unknown task state "${s}".`);
}

/** listTasks's limit: undefined (all), or a whole number from 1 (a bug otherwise). */
export function checkListLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new GqError(`invalid listTasks limit ${limit}`);
}
