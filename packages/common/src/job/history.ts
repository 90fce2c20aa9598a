/**
 * A task's attempt history (TaskRecord.history) as pure functions of the list: a claim opens an
 * entry, the attempt's end closes the open one with its outcome. transitions.ts calls these from
 * its decide* functions, so both backends record the same history in the same conditional write
 * as the transition itself. Entries never hold an `undefined` field (DynamoDB items, SQLite JSON),
 * and the list keeps only the newest MAX_ATTEMPT_HISTORY entries: at about 150 bytes each, 30 of
 * them stay a small part of a task item (DynamoDB's limit is 400 KB per item:
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
 */
import type { ClaimOptions, TaskOutcome } from '../ports.js';
import { MAX_ATTEMPT_HISTORY, type AttemptOutcome, type AttemptRecord } from './model.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** The newest MAX_ATTEMPT_HISTORY entries. */
function bounded(h: AttemptRecord[]): AttemptRecord[] {
  return h.length > MAX_ATTEMPT_HISTORY ? h.slice(h.length - MAX_ATTEMPT_HISTORY) : h;
}

/** The index of the open (running) entry: the last one, when it has no end. */
function openIndex(h: readonly AttemptRecord[]): number {
  const last = h.length - 1;
  return last >= 0 && h[last]!.outcome === undefined ? last : -1;
}

/**
 * The history with its open entry closed: `outcome` at `endedAt` (with the exit code when there
 * is one). Unchanged (the same array) when no entry is open.
 */
export function closeAttempt(
  history: readonly AttemptRecord[] | undefined,
  outcome: AttemptOutcome,
  endedAt: number,
  exitCode?: number,
): AttemptRecord[] | undefined {
  const h = history ?? [];
  const i = openIndex(h);
  if (i < 0) return history as AttemptRecord[] | undefined;
  const closed: AttemptRecord = { ...h[i]!, endedAt: iso(Math.max(endedAt, Date.parse(h[i]!.startedAt) || endedAt)), outcome };
  if (exitCode !== undefined) closed.exitCode = exitCode;
  return [...h.slice(0, i), closed];
}

/**
 * The open entry closed as 'lost': its worker stopped renewing the lease (crash, kill -9, a
 * reclaimed instance). It ended when the lease ran out, at the latest `now`.
 */
export function loseAttempt(history: readonly AttemptRecord[] | undefined, leaseUntil: number | undefined, now: number): AttemptRecord[] | undefined {
  return closeAttempt(history, 'lost', Math.min(leaseUntil ?? now, now));
}

/**
 * The history with a new open entry for a claim by `instance` at `now`; an entry still open (a
 * lease taken over) is closed as lost first.
 */
export function openAttempt(
  history: readonly AttemptRecord[] | undefined,
  instance: string,
  now: number,
  opts: ClaimOptions = {},
  lostLeaseUntil?: number,
): AttemptRecord[] {
  const h = loseAttempt(history, lostLeaseUntil, now) ?? [];
  const entry: AttemptRecord = { instance, startedAt: iso(now) };
  if (opts.instanceType !== undefined) entry.instanceType = opts.instanceType;
  if (opts.lifecycle !== undefined) entry.lifecycle = opts.lifecycle;
  return bounded([...h, entry]);
}

/** How an attempt that its worker reported ended (the outcome of `complete`). */
export function attemptOutcome(o: TaskOutcome): { outcome: AttemptOutcome; exitCode?: number } {
  switch (o.kind) {
    case 'succeeded':
      return { outcome: 'succeeded', exitCode: o.exitCode };
    case 'failed':
      return { outcome: o.timedOut ? 'timeout' : 'failed', exitCode: o.exitCode };
    case 'released':
      return { outcome: o.interrupted ? 'interrupted' : 'released' };
    case 'cancelled':
      return { outcome: 'cancelled' };
  }
}

/** The open entry closed with the outcome its worker reported. */
export function completeAttempt(history: readonly AttemptRecord[] | undefined, o: TaskOutcome, now: number): AttemptRecord[] | undefined {
  const { outcome, exitCode } = attemptOutcome(o);
  return closeAttempt(history, outcome, now, exitCode);
}
