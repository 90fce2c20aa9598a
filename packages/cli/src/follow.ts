/** `--wait`: follow a job to its end with a progress bar; exit 1 if any task failed. */
import cliProgress from 'cli-progress';
import { sleep, UserError, type Backend, type FleetGroup, type JobRecord } from '@gq/common';
import type { CommandContext } from './context.js';
import { FAILED_TO_START, reconcile, removeFinishedFleet } from './workers.js';
import { statusJson } from './commands/status.js';
import { fleetReport, giveUpReason } from './fleet-report.js';
import { drawsOn } from './progress.js';

/** The longest --wait waits for a finished job's workers to leave before it returns. */
const LEAVE_WAIT_MAX_S = 300;

export async function followJob(ctx: CommandContext, backend: Backend, name: string, o: { json?: boolean; pollMs?: number }): Promise<number> {
  const tty = drawsOn(process.stderr) && !o.json;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: ' {bar} {percentage}% | {value}/{total} done | {running} running | {failed} failed', hideCursor: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let lastLine = '';
  let lastReconcile = Date.now();
  let started = false;
  for (;;) {
    const job = await backend.status.getJob(name);
    if (!job) throw new Error(`job ${name} disappeared while waiting`);
    const c = job.counts;
    const done = c.succeeded + c.failed + c.cancelled;
    if (bar) {
      if (!started) bar.start(job.total, done, { running: c.running, failed: c.failed });
      bar.update(done, { running: c.running, failed: c.failed });
    } else if (!o.json) {
      const line = `${name}: ${done}/${job.total} done (${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled), ${c.running} running, ${c.queued} queued`;
      if (line !== lastLine) ctx.io.err(line);
      lastLine = line;
    }
    started = true;
    if (c.queued + c.running === 0) {
      bar?.stop();
      // Nothing of the job is left billing when --wait returns: its workers leave within their
      // idle period (then the fleet and queues go); a worker that does not is named by gq status.
      await removeFinishedFleet(ctx, backend, job, {
        waitMs: Math.min(LEAVE_WAIT_MAX_S, job.idleSeconds + 60) * 1000,
        pollMs: Math.min(1000, o.pollMs ?? 1000),
        onWait: (n) => {
          if (!o.json) ctx.io.err(`${name}: every task is final; waiting for ${n} worker(s) to leave (within the ${job.idleSeconds} s idle period).`);
        },
      });
      if (o.json) ctx.io.out(JSON.stringify(await statusJson(backend, job, false)));
      else {
        ctx.io.err(`Job ${name} finished: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled.`);
        if (c.failed) ctx.io.err(`See why with: gq status ${name}   Rerun the failed ones with: gq retry ${name} --failed`);
        ctx.io.err(`Get the results with: gq results ${name}`);
      }
      return c.failed > 0 ? 1 : 0;
    }
    if (Date.now() - lastReconcile > 3000) {
      lastReconcile = Date.now();
      // Launches AWS refuses and boot loops end the wait with AWS's reason instead of waiting for ever.
      const report = await fleetReport(ctx, backend, job);
      const giveUp = report && giveUpReason(job, report, ctx.config);
      if (giveUp) {
        bar?.stop();
        if (o.json) ctx.io.out(JSON.stringify(await statusJson(backend, job, false, { report, bootFailures: ctx.config.bootFailures })));
        throw giveUp;
      }
      const { restarted, deadLettered, capped } = await reconcile(ctx, backend, job, report?.groups);
      if (capped && c.running === 0) {
        bar?.stop();
        if (o.json) ctx.io.out(JSON.stringify(await statusJson(backend, job, false, undefined, ctx.config.region)));
        else ctx.io.err(`Job ${name} stopped at its cost cap with ${c.queued} task(s) left; see gq status ${name}. Go on with: gq resume ${name} --max-cost USD`);
        return 1;
      }
      if (restarted.length) ctx.log.info({ types: restarted }, 'restarted workers for pending tasks');
      if (deadLettered.length) ctx.io.err(`Task(s) ${deadLettered.join(', ')}: the queue gave up on their message (dead-letter queue); recorded as failed.`);
      const stuck = await installStuck(backend, job, report?.groups);
      if (stuck.length) {
        bar?.stop();
        const failed = (await backend.status.listInstances(name)).filter((i) => FAILED_TO_START.has(i.state));
        const boot = failed.every((i) => i.state === 'BOOT_FAILED');
        throw new UserError(
          boot
            ? `Every worker of ${stuck.join(', ')} failed to boot; ${c.queued} task(s) cannot start.`
            : `The install script failed on every worker of ${stuck.join(', ')}; ${c.queued} task(s) cannot start.`,
          {
            details: failed.slice(0, 5).map((i) => `${i.instance}: ${i.detail ?? ''}`),
            hint: `Read the ${boot ? 'boot' : 'install'} log with gq logs ${name} --instance ID, fix the ${boot ? 'AMI or set-up' : 'script'}, then gq cancel ${name} and submit again.`,
          },
        );
      }
    }
    // A local job's counters are one SQLite read: look often, so a short job ends when it does.
    await sleep(o.pollMs ?? (backend.name === 'local' ? 50 : 300));
  }
}

/**
 * Instance types whose workers all failed their install and none is left to run the queue. A
 * group that still boots an instance without a record is not stuck yet: whether that one works
 * is for its own report, or the boot check (boot-watch.ts), to say.
 */
async function installStuck(backend: Backend, job: JobRecord, groups?: FleetGroup[]): Promise<string[]> {
  const instances = await backend.status.listInstances(job.name);
  const recorded = new Set(instances.map((i) => i.instance));
  const out: string[] = [];
  for (const type of Object.keys(job.instanceTypes)) {
    // Any group of the type (its own, a Spot job's on-demand one) still booting an unrecorded instance.
    const booting = groups?.some((g) => g.instanceType === type && g.instances.some((i) => !recorded.has(i.id) && (i.phase === 'starting' || i.phase === 'running')));
    if (booting) continue;
    const mine = instances.filter((i) => i.instanceType === type);
    if (mine.length && mine.every((i) => FAILED_TO_START.has(i.state) || i.state === 'STOPPED') && mine.some((i) => FAILED_TO_START.has(i.state))) out.push(type);
  }
  return out;
}
