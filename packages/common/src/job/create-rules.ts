/**
 * What StatusStore.createJob checks before it writes, the same on both backends: the task numbers
 * of the call, and that a job already under the name is this same job (a submit run again).
 */
import { GqError } from '../errors.js';
import { JobExistsError } from '../port-errors.js';
import type { JobSpec, NewTask } from './model.js';

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
