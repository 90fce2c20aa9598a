/**
 * Boot loops: instances that launch but never report to gq.
 *
 * A worker's first act is to write its instance record (the agent), and a boot that fails in its
 * UserData records BOOT_FAILED and leaves its group with the desired capacity decremented
 * (userdata.ts). When neither can reach the status table (no route from the subnet to
 * DynamoDB/S3, the role refused, Node not installable and curl too old, a hung boot), the
 * instance powers off (or hangs) silently, Auto Scaling replaces it, and the account pays for an
 * endless series of boots. The agents cannot see this (they never ran), so the gq commands that
 * read the fleet do: `gq status` and `gq submit --wait` (every few seconds).
 *
 * An instance counts as a failed boot when EC2 knows it under the job's tag, gq has no record of
 * it, and either it has already ended (not reclaimed as Spot) or it was launched more than
 * `bootTimeout` ago. It is then recorded as BOOT_FAILED with the best reason gq has: its
 * console output's "boot failed: ..." line (GetConsoleOutput, when allowed), else its last boot
 * log line, else "no report within N minutes" / "ended without reporting" (with EC2's state
 * reason). The records are the memory of the check (EC2 forgets terminated instances after about
 * an hour) and what `gq status` shows; once a type has `bootFailures` of them (UserData reports
 * included) since it last had a working instance (countedBootFailures: a few flaky boots in a
 * long job whose other workers work do not stop it), its group is set to 0, and reconcile does
 * not start it again (FAILED_TO_START).
 * Writing a record only for instances without one, and setting 0 only when the group is above
 * it, makes the check idempotent: any number of commands may run it at once or again.
 */
import { type Backend, type FleetGroup, type InstanceRecord, type JobRecord, type LaunchedInstance, type Logger } from '@gq/common';

export interface SilentBoot {
  instance: LaunchedInstance;
  /** ended: gone without a report; timeout: still there, silent past the boot deadline. */
  why: 'ended' | 'timeout';
}

const ENDED = /^(shutting-down|terminated|stopping|stopped)$/;
/** EC2 StateReason of a Spot reclaim: not a failed boot. */
const SPOT_RECLAIM = /Spot/i;
/** StateReasons that only say "someone shut it down", which the console output explains better. */
const PLAIN_SHUTDOWN = /^Client\.(User|Instance)InitiatedShutdown/;

/** Clock skew allowed between this machine (the job's createdAt) and EC2 (launch times). */
const SKEW_MS = 60_000;

/**
 * The job's launched instances that never reported (pure). Only instances launched after the job
 * was created count: EC2 still shows, for about an hour, the instances of an earlier job of the
 * same name (cleaned with --purge and submitted again), whose records are gone.
 */
export function silentBoots(
  launched: readonly LaunchedInstance[],
  records: readonly InstanceRecord[],
  now: number,
  timeoutMs: number,
  jobCreatedAt?: string,
): SilentBoot[] {
  const known = new Set(records.map((r) => r.instance));
  const since = jobCreatedAt ? Date.parse(jobCreatedAt) - SKEW_MS : -Infinity;
  const out: SilentBoot[] = [];
  for (const i of launched) {
    if (known.has(i.id) || Date.parse(i.launchedAt) < since) continue;
    if (ENDED.test(i.state)) {
      if (!SPOT_RECLAIM.test(i.stateReason ?? '')) out.push({ instance: i, why: 'ended' });
    } else if (now - Date.parse(i.launchedAt) >= timeoutMs) {
      out.push({ instance: i, why: 'timeout' });
    }
  }
  return out;
}

const MAX_DETAIL = 400;

/** "15 minutes", "1 minute", "40 seconds". */
function span(ms: number): string {
  const [n, unit] = ms >= 60_000 ? [Math.round(ms / 60_000), 'minute'] : [Math.round(ms / 1000), 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, MAX_DETAIL);

/** Why a silent boot failed, from what gq has (pure). */
export function silentBootReason(s: SilentBoot, console: string | undefined, timeoutMs: number): string {
  const lines = (console ?? '').split(/\r?\n/);
  const failed = lines.filter((l) => /\bboot failed: /.test(l)).pop();
  if (failed) return oneLine(failed.slice(failed.indexOf('boot failed: ')));
  const last = lines.filter((l) => /\[gq-(userdata|boot)\b/.test(l)).pop();
  const base =
    s.why === 'ended'
      ? `ended without reporting to gq${s.instance.stateReason && !PLAIN_SHUTDOWN.test(s.instance.stateReason) ? ` (EC2: ${s.instance.stateReason})` : ''}`
      : `no report within ${span(timeoutMs)} of its launch`;
  return oneLine(last ? `${base}; last boot log line: ${last.replace(/^.*?\[gq-(userdata|boot)[^\]]*\]\s*/, '')}` : base);
}

/** Records of workers that got to work at some point (their heartbeat is their last sign of life). */
const FAILED_STATES = new Set(['BOOT_FAILED', 'INSTALL_FAILED']);

/**
 * The type's failed boots that count (pure): BOOT_FAILED records newer than the last sign of life
 * of any of its workers that did get to work, oldest first. A BOOT_FAILED record's heartbeatAt
 * is when the boot failed (the UserData's report) or when the instance was launched (the check's
 * own records).
 */
export function countedBootFailures(records: readonly InstanceRecord[], type: string): InstanceRecord[] {
  const mine = records.filter((r) => r.instanceType === type);
  const lastAlive = mine.filter((r) => !FAILED_STATES.has(r.state)).reduce((m, r) => (r.heartbeatAt > m ? r.heartbeatAt : m), '');
  return mine.filter((r) => r.state === 'BOOT_FAILED' && r.heartbeatAt > lastAlive).sort((a, b) => a.heartbeatAt.localeCompare(b.heartbeatAt));
}

export interface BootCheck {
  /** Failed boots of the type since it last had a working instance (countedBootFailures). */
  failedBoots: number;
  /** The newest failure's reason. */
  reason?: string;
  /** failedBoots reached the limit: the group is (now) at 0. */
  stopped: boolean;
}

export interface BootCheckOptions {
  bootTimeoutSeconds: number;
  bootFailures: number;
  log: Logger;
  now?: number;
}

/** Record silent boots, and set the group of each type with too many failed boots to 0. */
export async function checkBoots(
  backend: Backend,
  job: JobRecord,
  groups: readonly FleetGroup[],
  o: BootCheckOptions,
): Promise<Record<string, BootCheck>> {
  const timeoutMs = o.bootTimeoutSeconds * 1000;
  let records = await backend.status.listInstances(job.name);
  if (backend.fleet.launched && !job.cancelRequested) {
    // A type already stopped is not looked at again: what ends now was ended by the stop itself.
    const failedOf = (type: string) => countedBootFailures(records, type).length;
    const silent = silentBoots(await backend.fleet.launched(job.name), records, o.now ?? Date.now(), timeoutMs, job.createdAt).filter(
      (s) => failedOf(s.instance.instanceType) < o.bootFailures,
    );
    for (const s of silent) {
      const console = await backend.fleet.consoleOutput?.(s.instance.id).catch(() => undefined);
      const rec: InstanceRecord = {
        job: job.name,
        instance: s.instance.id,
        instanceType: s.instance.instanceType,
        state: 'BOOT_FAILED',
        // When it booted, so that it is ordered against the workers that did work (countedBootFailures).
        heartbeatAt: s.instance.launchedAt,
        detail: silentBootReason(s, console, timeoutMs),
      };
      await backend.status.putInstance(rec);
      o.log.info({ job: job.name, instance: rec.instance, detail: rec.detail }, 'instance never reported: recorded as a failed boot');
    }
    if (silent.length) records = await backend.status.listInstances(job.name);
  }
  const out: Record<string, BootCheck> = {};
  for (const type of Object.keys(job.instanceTypes)) {
    const failed = countedBootFailures(records, type);
    const stopped = failed.length >= o.bootFailures;
    // The boot script's own words when some boot had them, else the newest reason.
    const telling = failed.filter((r) => r.detail?.startsWith('boot failed: ')).pop() ?? failed[failed.length - 1];
    out[type] = { failedBoots: failed.length, ...(telling?.detail ? { reason: telling.detail } : {}), stopped };
    // Every group of the type: its own, and a Spot job's on-demand one (job/on-demand.ts).
    for (const group of groups.filter((g) => g.instanceType === type)) {
      if (!stopped || job.cancelRequested || group.desired === 0) continue;
      await backend.fleet.ensureCapacity(job, type, 0, group.pool);
      o.log.info({ job: job.name, type, pool: group.pool ?? 'main', failedBoots: failed.length }, 'too many failed boots: group set to 0');
    }
  }
  return out;
}
