/**
 * What a simulated fleet run cost and how long its instances sat without work (pure; bench/fleet
 * and test/fleet-idle.test.ts feed it the instance runtime's launch and leave times, the install
 * script's marks and the tasks' attempts).
 *
 * - Paid time: each instance from its launch to leaving its group, billed per second with a
 *   60-second minimum, as AWS bills Linux instances (https://aws.amazon.com/ec2/pricing/on-demand/).
 *   `scale` compresses time: a simulation whose idle period of 5 s stands for 120 s runs at scale
 *   24, and then a billed second is 1/24 s of the run and the minimum 60/24 s.
 * - Useful time: the tasks' attempts plus each instance's boot (launch to the install script's
 *   start) and install (the script's run).
 * - Idle stretches: the instance's time from the end of its install to leaving, outside its
 *   attempts (boot and install excluded).
 */

export interface InstanceTimes {
  id: string;
  /** Epoch ms: launch and leaving the group (billing starts and ends). */
  launchedAt: number;
  leftAt: number;
  /** Epoch ms the install script started and ended (both absent: no install mark, ready at launch). */
  installStart?: number;
  installEnd?: number;
}

export interface Attempt {
  task: number;
  instance: string;
  start: number;
  end: number;
}

export interface InstanceFigures {
  id: string;
  /** Seconds of the run, as billed (per scaled second, the scaled minimum). */
  paid: number;
  boot: number;
  install: number;
  busy: number;
  tasks: number;
  /** Longest time without a task after the install, seconds. */
  longestIdle: number;
  /** All its time without a task after the install, and the part after its last task (to leaving). */
  idle: number;
  idleAtEnd: number;
}

export interface FleetFigures {
  instances: InstanceFigures[];
  paid: number;
  taskTime: number;
  bootAndInstall: number;
  /** paid ÷ (task time + boot and install). */
  ratio: number;
  longestIdle: number;
  /** Where paid exceeds the useful time: idle after the last task, other idle, billing rounding up. */
  waste: { idleAtEnd: number; idleBetween: number; rounding: number };
}

export const AWS_MINIMUM_BILLED_SECONDS = 60;

/** Seconds billed for `ms` of run time at `scale` (simulated seconds per real second). */
export function billedSeconds(ms: number, scale = 1): number {
  if (!(scale > 0)) throw new Error(`scale must be positive, got ${scale}`);
  const simulated = Math.max(AWS_MINIMUM_BILLED_SECONDS, Math.ceil((Math.max(0, ms) / 1000) * scale - 1e-9));
  return simulated / scale;
}

/** Gaps (ms) in [from, to] that no interval covers. */
export function gaps(from: number, to: number, intervals: readonly { start: number; end: number }[]): number[] {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  const out: number[] = [];
  let at = from;
  for (const i of sorted) {
    if (i.start > at) out.push(Math.min(i.start, to) - at);
    at = Math.max(at, i.end);
    if (at >= to) break;
  }
  if (to > at) out.push(to - at);
  return out.filter((g) => g > 0);
}

export function fleetFigures(instances: readonly InstanceTimes[], attempts: readonly Attempt[], scale = 1): FleetFigures {
  const per = instances.map((i): InstanceFigures => {
    if (!(i.leftAt >= i.launchedAt)) throw new Error(`instance ${i.id}: left before its launch`);
    const mine = attempts.filter((a) => a.instance === i.id);
    const installStart = i.installStart ?? i.launchedAt;
    const ready = i.installEnd ?? installStart;
    const idle = gaps(ready, i.leftAt, mine);
    const lastEnd = Math.max(ready, ...mine.map((a) => a.end));
    return {
      id: i.id,
      paid: billedSeconds(i.leftAt - i.launchedAt, scale),
      boot: (installStart - i.launchedAt) / 1000,
      install: (ready - installStart) / 1000,
      busy: mine.reduce((s, a) => s + (a.end - a.start), 0) / 1000,
      tasks: mine.length,
      longestIdle: Math.max(0, ...idle) / 1000,
      idle: idle.reduce((a, b) => a + b, 0) / 1000,
      idleAtEnd: Math.max(0, i.leftAt - lastEnd) / 1000,
    };
  });
  const sum = (f: (x: InstanceFigures) => number) => per.reduce((s, x) => s + f(x), 0);
  const paid = sum((x) => x.paid);
  const taskTime = attempts.reduce((s, a) => s + (a.end - a.start), 0) / 1000;
  const bootAndInstall = sum((x) => x.boot + x.install);
  const useful = taskTime + bootAndInstall;
  return {
    instances: per,
    paid,
    taskTime,
    bootAndInstall,
    ratio: useful > 0 ? paid / useful : Number.POSITIVE_INFINITY,
    longestIdle: Math.max(0, ...per.map((x) => x.longestIdle)),
    waste: {
      idleAtEnd: sum((x) => x.idleAtEnd),
      idleBetween: sum((x) => x.idle - x.idleAtEnd),
      rounding: paid - instances.reduce((s, i) => s + (i.leftAt - i.launchedAt) / 1000, 0),
    },
  };
}

export interface Marks {
  /** Per instance: when its install script started and ended. */
  installs: Map<string, { installStart?: number; installEnd?: number }>;
  /** Per task: the instance that ran its command (the last start) and the command's start and end. */
  tasks: Map<number, { instance: string; start: number; end: number }>;
}

/**
 * Lines "<epoch ms> install-start|install-end <instance>" and "<epoch ms> task-start|task-end
 * <instance> <task>", as the bench's and the test's scripts append them; other lines are skipped.
 */
export function parseMarks(text: string): Marks {
  const installs: Marks['installs'] = new Map();
  const tasks: Marks['tasks'] = new Map();
  for (const line of text.split('\n')) {
    const [at, what, instance, task] = line.trim().split(/\s+/);
    const ms = Number(at);
    if (!instance || !Number.isFinite(ms)) continue;
    if (what === 'install-start' || what === 'install-end') {
      const i = installs.get(instance) ?? {};
      if (what === 'install-start') i.installStart = ms;
      else i.installEnd = ms;
      installs.set(instance, i);
    } else if ((what === 'task-start' || what === 'task-end') && task !== undefined) {
      const n = Number(task);
      if (what === 'task-start') tasks.set(n, { instance, start: ms, end: ms });
      else {
        const t = tasks.get(n);
        if (t && t.instance === instance) t.end = ms;
      }
    }
  }
  return { installs, tasks };
}

/**
 * The attempts as gq recorded them (a task's startedAt, its claim, to its finishedAt), each on
 * the instance its command marked. A task without both times or without a mark is left out.
 */
export function attemptsOf(tasks: readonly { task: number; startedAt?: string; finishedAt?: string }[], marks: Marks): Attempt[] {
  return tasks.flatMap((t) => {
    const m = marks.tasks.get(t.task);
    if (!m || !t.startedAt || !t.finishedAt) return [];
    return [{ task: t.task, instance: m.instance, start: Date.parse(t.startedAt), end: Date.parse(t.finishedAt) }];
  });
}
