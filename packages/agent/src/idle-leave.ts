/**
 * Whether an idle worker may leave, and what the one that stays must do. Pure rule
 * (decideIdle) apart from the reads that feed it (readIdleFacts).
 *
 * The rule: a worker leaves on idle only when no task of its type can come back to the queue,
 * or when another worker of its type is there to take it when it does. It looks twice: once
 * when it runs out of work (its first empty receive, EarlyLook), and leaves at once if nothing of
 * its type waits (none QUEUED, visible or delayed) and the rule says leave; else after the idle
 * period (`--idle`) without work, when it leaves if the rule says so. What the user reads
 * (README): an instance leaves after --idle seconds without work, and at once when nothing is
 * left that it could run. Either way no worker is idle longer than the idle period plus one
 * receive, and the last one of a type (the keeper) stays while a task of its type can come back.
 *
 * A task can come back while its message is in flight or delayed (an attempt running somewhere
 * that may fail and be retried; a failed attempt given back with a short delay; the message of a
 * worker that was lost, invisible until its visibility timeout) or while the status store says it
 * is RUNNING (a live lease; SQS's counts are approximate and lag). Looking only at visible
 * messages, the last workers left while a failed attempt waited out its retry delay, and the
 * retry waited for the next `gq` command to start workers again.
 *
 * Keeping every worker for that would keep a whole fleet idle for the length of the longest
 * task. So one worker of the type stays, the keeper, and the others leave:
 * - a worker leaves when another live worker of its type is BUSY (that one looks again when its
 *   task ends: the same rule applies to it then), or is idle with a smaller instance id (ties
 *   broken by id, so two idle workers never both leave and never both stay);
 * - otherwise it is the keeper, and it stays while a task of its type could come back.
 * "Live" is a worker record of the type, not STOPPED nor failed to start, whose heartbeat is
 * fresh (workers beat every minute). The keeper also re-sends the message of a QUEUED task that
 * has none (SQS dropped it after its retention period): see `resend`.
 *
 * Bound: at most one idle worker per type waits, and only while tasks of the type run or wait
 * for a retry. A keeper that leaves at the same moment a busy one crashes can still strand a
 * task until the next gq command (which restarts workers); on EC2 a crashed instance is replaced
 * by its group anyway (its desired capacity was not lowered).
 *
 * A worker with several slots is idle only when every slot is (the loop asks only then), and it
 * counts as BUSY to the others while any slot runs a task.
 */
import { failDeadLettered, poolsOf, queueFor, type InstanceRecord, type JobRecord, type QueueDepth, type TaskState } from '@gq/common';
import type { AgentDeps } from './deps.js';

/** A record whose heartbeat is older than this is a worker that is gone. */
export const LIVE_HEARTBEAT_MS = 3 * 60_000;

const NOT_LIVE: ReadonlySet<string> = new Set(['STOPPED', 'INSTALL_FAILED', 'BOOT_FAILED']);

export interface IdleFacts {
  /** This worker's instance id and type. */
  self: string;
  instanceType: string;
  /** This worker's pool (a Spot job's on-demand group: job/on-demand.ts); the facts are of its queue. */
  pool?: 'on-demand';
  depth: QueueDepth;
  /** Tasks of this type the status store holds as RUNNING. */
  running: number;
  /** Tasks of this type the status store holds as QUEUED. */
  queued: number;
  /** The job's worker records (all types). */
  instances: readonly InstanceRecord[];
  now: number;
}

export type IdleDecision =
  /** Messages are waiting: receive again. */
  | { action: 'stay'; why: 'visible' | 'keeper' }
  /** Stay, and first send the messages of the QUEUED tasks again (their messages are gone). */
  | { action: 'resend'; why: 'queued-without-message' }
  | { action: 'leave'; why: 'nothing-can-come-back' | 'another-worker-stays' };

/** Workers of `type`, other than `self`, that are alive now. */
export function liveOthers(f: Pick<IdleFacts, 'self' | 'instanceType' | 'pool' | 'instances' | 'now'>): InstanceRecord[] {
  return f.instances.filter(
    (i) =>
      i.instance !== f.self &&
      i.instanceType === f.instanceType &&
      i.pool === f.pool &&
      !NOT_LIVE.has(i.state) &&
      f.now - Date.parse(i.heartbeatAt) <= LIVE_HEARTBEAT_MS,
  );
}

/** Whether this worker is the one of its type that stays (see the rule above). */
export function isKeeper(f: Pick<IdleFacts, 'self' | 'instanceType' | 'pool' | 'instances' | 'now'>): boolean {
  return !liveOthers(f).some((o) => o.state === 'BUSY' || o.instance < f.self);
}

/**
 * Messages that exist for tasks of the type are visible, delayed or in flight; tasks that need
 * one are QUEUED or RUNNING (a running task's message is in flight, held by its worker). More
 * tasks than messages, with nothing visible or delayed: some QUEUED task lost its message.
 */
export function missingMessages(f: Pick<IdleFacts, 'depth' | 'queued' | 'running'>): boolean {
  const { visible, delayed, inFlight } = f.depth;
  return f.queued > 0 && visible === 0 && delayed === 0 && f.queued + f.running > inFlight;
}

export function decideIdle(f: IdleFacts): IdleDecision {
  if (f.depth.visible > 0) return { action: 'stay', why: 'visible' };
  const couldComeBack = f.depth.inFlight + f.depth.delayed + f.running + f.queued > 0;
  if (!couldComeBack) return { action: 'leave', why: 'nothing-can-come-back' };
  if (!isKeeper(f)) return { action: 'leave', why: 'another-worker-stays' };
  if (missingMessages(f)) return { action: 'resend', why: 'queued-without-message' };
  return { action: 'stay', why: 'keeper' };
}

/**
 * Whether an idle worker may leave at once, on its first empty receive, instead of at the end of
 * its idle period: when waiting could change nothing. Nothing of its type is QUEUED (the store's
 * count is exact; SQS's are approximate), visible or delayed, and the rule above says leave:
 * nothing can come back, or another worker stays for what can (a BUSY one looks again when its
 * task ends, so a retry of that task has a worker). Otherwise every worker that ran out of work
 * near the end of a job sat idle for the whole idle period while the last long tasks ran
 * (bench/fleet: the idle period times the instances was over half of what the fleet paid beyond
 * its work).
 */
export function leavesEarly(f: IdleFacts): boolean {
  if (f.queued > 0 || f.depth.visible > 0 || f.depth.delayed > 0) return false;
  return decideIdle(f).action === 'leave';
}

/** Reads of the status store the facts need (a narrow slice of StatusStore). */
export interface IdleReads {
  depth(): Promise<QueueDepth>;
  /** The job's counters and its instance types (StatusStore.getJob). */
  job(): Promise<{ counts: { queued: number; running: number }; instanceTypes: Record<string, number>; spotInterruptions?: number } | undefined>;
  /** Task numbers of the type in each of these states (StatusStore.listTasks). */
  tasksOfType(states: readonly ('QUEUED' | 'RUNNING')[]): Promise<{ task: number; state: string }[]>;
  instances(): Promise<InstanceRecord[]>;
}

/**
 * Gather the facts, reading no more than the decision needs: visible messages decide alone (one
 * GetQueueAttributes); then the job item; the tasks of the type only when the job has several
 * types and unfinished tasks; the worker records only when a task could come back.
 * `queuedTasks` lists the QUEUED tasks of the type when they were read.
 */
export async function readIdleFacts(
  r: IdleReads,
  self: string,
  instanceType: string,
  now: () => number = Date.now,
  pool?: 'on-demand',
): Promise<{ facts: IdleFacts; queuedTasks?: number[] }> {
  const depth = await r.depth();
  const base = { self, instanceType, ...(pool ? { pool } : {}), depth, running: 0, queued: 0, instances: [] as InstanceRecord[] };
  if (depth.visible > 0) return { facts: { ...base, now: now() } };
  const job = await r.job();
  if (!job) return { facts: { ...base, now: now() } };
  let { queued, running } = job.counts;
  let queuedTasks: number[] | undefined;
  // The job's counts are of every type and pool: read the tasks when they hold more than this queue's.
  if (queued + running > 0 && (Object.keys(job.instanceTypes).length > 1 || poolsOf(job).length > 1)) {
    const tasks = await r.tasksOfType(['QUEUED', 'RUNNING']);
    queuedTasks = tasks.filter((t) => t.state === 'QUEUED').map((t) => t.task);
    queued = queuedTasks.length;
    running = tasks.length - queued;
  }
  const facts = { ...base, queued, running };
  if (depth.inFlight + depth.delayed + queued + running === 0) return { facts: { ...facts, now: now() } };
  return { facts: { ...facts, instances: await r.instances(), now: now() }, queuedTasks };
}

/** The reads of readIdleFacts through the agent's ports (tasks of its type only). */
function idleReads(d: AgentDeps, job: JobRecord) {
  // This worker's queue's tasks: of its type, and of its pool in a Spot job that falls back to on-demand.
  const pool = d.pool ?? 'main';
  const tasksOfType = async (states: readonly TaskState[]) =>
    (await d.backend.status.listTasks(job.name, { states })).filter((t) => t.instanceType === d.instanceType && queueFor(t, job) === pool);
  const reads: IdleReads = {
    depth: () => d.queue.depth(),
    job: () => d.backend.status.getJob(job.name),
    tasksOfType,
    instances: () => d.backend.status.listInstances(job.name),
  };
  return { reads, tasksOfType };
}

/**
 * How long the first receive of an idle stretch waits (seconds): the early look (EarlyLook)
 * comes this soon after a worker runs out of work (EarlyLook), not a whole long poll later.
 */
export const FIRST_IDLE_WAIT_S = 1;
/** The longest long poll (SQS's WaitTimeSeconds is at most 20:
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html). */
const LONGEST_WAIT_S = 20;

/**
 * How long a receive waits (seconds). With busy slots, no longer than the idle period (the idle
 * check comes on time after the last one ends); idle, no longer than what is left of the idle
 * period, and the first receive of an idle stretch (not `looked` yet) FIRST_IDLE_WAIT_S.
 */
export function receiveWaitSeconds(o: { busy: number; idleSeconds: number; idleLeftMs: number; looked: boolean }): number {
  if (o.busy === 0 && !o.looked) return FIRST_IDLE_WAIT_S;
  return Math.max(1, Math.min(LONGEST_WAIT_S, Math.ceil((o.busy > 0 ? o.idleSeconds * 1000 : o.idleLeftMs) / 1000)));
}

/**
 * The early look, once per idle stretch (named by when it began) after its first empty receive:
 * whether the worker leaves at once (leavesEarly). A failed read is "no": the idle period runs,
 * and its check decides.
 */
export class EarlyLook {
  private lookedAt: number | undefined;

  constructor(
    private readonly d: AgentDeps,
    private readonly job: JobRecord,
    private readonly now: () => number,
  ) {}

  /** Whether the stretch that began at `stretch` had its look. */
  done(stretch: number): boolean {
    return this.lookedAt === stretch;
  }

  async leaves(stretch: number): Promise<boolean> {
    if (this.done(stretch)) return false;
    this.lookedAt = stretch;
    const { d } = this;
    try {
      const { facts } = await readIdleFacts(idleReads(d, this.job).reads, d.instance, d.instanceType, this.now, d.pool);
      const early = leavesEarly(facts);
      if (early) d.log.info({ depth: facts.depth, running: facts.running }, 'nothing of this type waits, and what can come back has a worker: leaving at once');
      return early;
    } catch (e) {
      d.log.debug({ err: e }, 'could not look whether to leave early; the idle period decides');
      return false;
    }
  }
}

/**
 * Idle for the idle period: leave only when no task of this type can come back to the queue,
 * or another worker of the type stays for it (the rule above). The worker that stays
 * sends again the messages of QUEUED tasks that have none (dropped by SQS's retention).
 */
export async function idleDecision(d: AgentDeps, job: JobRecord, now: () => number): Promise<'leave' | 'stay'> {
  const { reads, tasksOfType } = idleReads(d, job);
  const { facts, queuedTasks } = await readIdleFacts(reads, d.instance, d.instanceType, now, d.pool);
  const decision = decideIdle(facts);
  if (decision.action === 'resend') {
    // A task whose message went to the dead-letter queue is not lost: it is recorded as
    // FAILED (as gq commands do), never sent again (that message may crash every agent).
    const failed = await failDeadLettered(d.backend.status, job, d.queue);
    if (failed.length > 0) d.log.warn({ tasks: failed }, 'tasks whose message went to the dead-letter queue recorded as failed');
    const tasks = failed.length === 0 && queuedTasks ? queuedTasks : (await tasksOfType(['QUEUED'])).map((t) => t.task);
    d.log.warn({ tasks: tasks.length, depth: facts.depth }, 'queued tasks have no message in the queue (dropped after its retention period?): sending them again');
    // A duplicate is harmless: the claim is conditional, a second delivery finds the task taken.
    if (tasks.length > 0) await d.queue.send(tasks);
  } else if (decision.action === 'stay' && decision.why === 'keeper') {
    d.log.debug({ depth: facts.depth, running: facts.running, queued: facts.queued }, 'idle, staying: a task of this type can come back');
  }
  return decision.action === 'leave' ? 'leave' : 'stay';
}
