/**
 * "Prove that nothing is lost": `gq submit` interrupted half way (Ctrl-C) and run again with the
 * same command finishes the job, and no task is duplicated or runs twice.
 *
 *  - local backend: the enqueue is one SQLite transaction, so the interrupt comes at the test-only
 *    pause points of submit (GQ_TEST_FAULT=pause:before-enqueue — tasks recorded, nothing queued;
 *    pause:before-workers — everything queued, no worker started), never from timing luck;
 *  - moto: a job of 200 rows, the CLI talking to moto through the fault proxy, which holds every
 *    SendMessageBatch for a second: SIGINT lands while the messages are being sent (checked: the
 *    job and some messages exist, not all of them). The run again sends the unfinished type's
 *    messages again; the claim keeps every task to one run.
 *
 * Every task appends its number to a file outside its task folder (on moto the instances are
 * local processes, so the same check works there): each number must be there exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalBackend } from '../packages/common/src/local/index.js';
import { queueName } from '../packages/common/src/aws/names.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { GQ, gq, gqEnv, pidsMatching, statusJson, testHome, waitFor } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { checkInvariants } from './support/invariants.js';
import { describeAws } from './support/moto.js';

const slow = process.env.GQ_QUICK ? it.skip : it;

/** A job whose tasks append their number to `ran` and write a one-row results file. */
function writeJob(dir: string, name: string, rows: number, types: readonly string[]): { jobfile: string; code: string; ran: string } {
  const code = join(dir, `${name}-code`);
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'README'), 'task code\n');
  const ran = join(dir, `${name}-ran.txt`);
  const lines = ['instance_type,command'];
  for (let i = 1; i <= rows; i++) {
    lines.push(`${types[i % types.length]},"echo ${i} >> '${ran}'; printf 'id\\n%d\\n' ${i} > results.csv"`);
  }
  const jobfile = join(dir, `${name}.csv`);
  writeFileSync(jobfile, lines.join('\n') + '\n');
  return { jobfile, code, ran };
}

/** How many times each task ran, from the file the tasks append to. */
function runsOf(ran: string): Map<number, number> {
  const m = new Map<number, number>();
  if (!existsSync(ran)) return m;
  for (const l of readFileSync(ran, 'utf8').split('\n').filter(Boolean)) m.set(Number(l), (m.get(Number(l)) ?? 0) + 1);
  return m;
}

function expectEachRanOnce(ran: string, rows: number): void {
  const runs = runsOf(ran);
  const wrong = [...Array(rows).keys()].map((i) => i + 1).filter((i) => runs.get(i) !== 1);
  expect(wrong.map((i) => `task ${i} ran ${runs.get(i) ?? 0} times`)).toEqual([]);
  expect([...runs.keys()].filter((k) => k < 1 || k > rows)).toEqual([]);
}

interface Running {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `gq submit ...` in the background (to be interrupted). */
function startGq(args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [GQ, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, stderr: () => err, exited };
}

async function interrupt(r: Running): Promise<{ code: number | null; stderr: string }> {
  r.child.kill('SIGINT');
  const t = setTimeout(() => r.child.kill('SIGKILL'), 15_000);
  const { code } = await r.exited;
  clearTimeout(t);
  return { code, stderr: r.stderr() };
}

async function settled<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

const RESUME_HINT = /run the same gq submit command again/;

// ------------------------------------------------------------------------------------------------

describe('gq submit interrupted and run again: local backend', () => {
  const ROWS = 20;

  for (const point of ['before-enqueue', 'before-workers'] as const) {
    it(`Ctrl-C at ${point}: the same command again enqueues no task twice and finishes the job, every task runs once`, async () => {
      const home = testHome(`submit-interrupt-${point}`);
      const env = gqEnv(home);
      const job = `sint-local-${point}`;
      const { jobfile, code, ran } = writeJob(home, job, ROWS, ['local']);
      const args = ['submit', jobfile, '--code', code, '--name', job, '--workers', '3'];

      const first = startGq(args, { ...env, GQ_TEST_FAULT: `pause:${point}` });
      const paused = await settled(waitFor(`gq submit to pause at ${point}`, async () => first.stderr().includes(`paused at ${point}`) || undefined, 30_000, 50));
      const stopped = await interrupt(first);
      if (paused.error) throw paused.error;
      // What the user sees: the state of the job and what to do.
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toMatch(RESUME_HINT);
      expect(stopped.stderr).not.toMatch(/internal error/);

      // The state it was interrupted in: every task recorded once, queued; nothing ran.
      const backend = openLocalBackend({ home: env.GQ_HOME! });
      try {
        const j = await backend.status.getJob(job);
        expect(j?.total).toBe(ROWS);
        expect(j?.counts).toMatchObject({ queued: ROWS, running: 0, succeeded: 0 });
        const visible = await backend.queues.open(job, 'local').then((q) => q.depth()).then((d) => d.visible, () => 0);
        expect(visible).toBe(point === 'before-enqueue' ? 0 : ROWS);
        expect(existsSync(ran)).toBe(false);

        // The same command again, stopped once more when everything is queued and no worker has
        // started: the queue holds exactly one message per task, so nothing was enqueued twice.
        const second = startGq(args, { ...env, GQ_TEST_FAULT: 'pause:before-workers' });
        const pausedAgain = await settled(waitFor('the second gq submit to pause at before-workers', async () => second.stderr().includes('paused at before-workers') || undefined, 30_000, 50));
        const stoppedAgain = await interrupt(second);
        if (pausedAgain.error) throw pausedAgain.error;
        expect(stoppedAgain.code, stoppedAgain.stderr).toBe(130);
        expect(await backend.queues.open(job, 'local').then((q) => q.depth())).toEqual({ visible: ROWS, inFlight: 0, delayed: 0 });
        expect(existsSync(ran)).toBe(false);

        // And again, following it this time.
        const again = await gq([...args, '--wait'], env, { timeoutMs: 90_000 });
        expect(again.code, again.stderr).toBe(0);
        expect(again.stderr).toMatch(/Resumed job/);

        const st = await statusJson(job, env);
        expect(st).toMatchObject({ total: ROWS, counts: { queued: 0, running: 0, succeeded: ROWS, failed: 0, cancelled: 0 } });
        expectEachRanOnce(ran, ROWS);
        await checkInvariants({ status: backend.status, artifacts: backend.artifacts, job, env, out: join(home, 'out'), results: 'every-task', idColumn: 'id' });
      } finally {
        await backend.close();
      }
      // No worker outlives the test (they leave after the idle second).
      await waitFor('the workers to leave', async () => pidsMatching(env.GQ_HOME!).length === 0 || undefined, 30_000);
    }, 120_000);
  }
});

// ------------------------------------------------------------------------------------------------


describeAws('gq submit interrupted during enqueue and run again: AWS backend on moto', () => {
  // 40 messages a type: 4 batches each, a second apart at the proxy (below), so the SIGINT comes
  // while the first type is being sent.
  const ROWS = 80;
  const TYPES = ['t3.micro', 't3.small'];
  let proxy: FaultProxy;
  let h: AwsHarness | undefined;

  beforeAll(async () => {
    if (process.env.GQ_QUICK) return;
    proxy = await startFaultProxy();
    h = await startAwsHarness('submit-interrupt', {
      jobPrefix: 'sint-',
      endpoint: (m) => {
        proxy.setUpstream(m.endpoint);
        return proxy.url;
      },
    });
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
  });

  slow(
    'SIGINT while the messages are being sent: the same command again resends only the unfinished type and finishes it, no task duplicated or run twice',
    async () => {
      const dir = testHome('submit-interrupt-aws');
      chmodSync(dir, 0o1777); // tasks run as the instances' task user and record their runs here
      const job = 'sint-aws';
      const { jobfile, code, ran } = writeJob(dir, job, ROWS, TYPES);
      const args = ['submit', jobfile, '--code', code, '--name', job];
      const sqs = h!.backend.clients.sqs;
      /** Messages in the job's queues (moto directly, not through the proxy). */
      const queued = async () => {
        let n = 0;
        for (const t of TYPES) {
          const url = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName(job, t) })).then((o) => o.QueueUrl, () => undefined);
          if (!url) continue;
          const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
          n += Number(a.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
        }
        return n;
      };

      // Hold each SendMessageBatch a second: the enqueue of the 80 messages takes 8 s.
      proxy.delay({ ms: 1000, services: ['sqs'], operations: ['SendMessageBatch'] });
      const first = startGq(args, h!.env);
      const sent = await settled(
        waitFor(
          'the job to exist and some of its messages to be sent',
          async () => {
            if (!(await h!.backend.status.getJob(job))) return undefined;
            const n = await queued();
            return n > 0 ? n : undefined;
          },
          90_000,
          100,
        ),
      );
      const stopped = await interrupt(first);
      proxy.delay(undefined);
      if (sent.error) throw sent.error;
      const atInterrupt = sent.value!;
      await new Promise((r) => setTimeout(r, 1500)); // requests the proxy still held are dropped
      const afterInterrupt = await queued();
      console.log(
        `[submit-interrupt] SIGINT with ${atInterrupt} of ${ROWS} messages sent; ${afterInterrupt} in the queues after it; ` +
          `SendMessageBatch forwarded ${proxy.stats().operations['sqs.SendMessageBatch'] ?? 0}`,
      );
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toMatch(RESUME_HINT);
      expect(stopped.stderr).not.toMatch(/internal error/);
      // Interrupted during the enqueue: the job and its tasks exist, not every message was sent,
      // no worker was started.
      const j = await h!.backend.status.getJob(job);
      expect(j?.total).toBe(ROWS);
      expect(afterInterrupt).toBeGreaterThan(0);
      expect(afterInterrupt).toBeLessThan(ROWS);
      expect(h!.runtime.instances().filter((i) => i.group.startsWith(`gq-${job}-`))).toEqual([]);

      // The same command again, following the job to its end.
      const again = await gq([...args, '--wait'], h!.env, { timeoutMs: 240_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/Resumed job/);
      // Each type's 40 messages go in 4 full batches: what was sent twice is the resent type.
      const batches = proxy.stats().operations['sqs.SendMessageBatch'] ?? 0;
      console.log(`[submit-interrupt] after the second run: ${batches * 10} messages sent in all for ${ROWS} tasks`);
      // Only the type whose enqueue was cut short is sent again: the one whose marker was written
      // is skipped, so at most one type's messages (ROWS / TYPES.length) were sent twice.
      expect(batches * 10).toBeLessThanOrEqual(ROWS + ROWS / TYPES.length);
      const st = await statusJson(job, h!.env);
      expect(st).toMatchObject({ total: ROWS, counts: { queued: 0, running: 0, succeeded: ROWS, failed: 0, cancelled: 0 } });
      expect(await h!.backend.status.listTasks(job)).toHaveLength(ROWS);
      expectEachRanOnce(ran, ROWS);
      await checkInvariants({ status: h!.backend.status, artifacts: h!.backend.artifacts, job, env: h!.env, out: join(dir, 'out'), results: 'every-task', idColumn: 'id' });
      const mine = () => h!.runtime.instances().filter((i) => i.group.startsWith(`gq-${job}-`));
      await h!.runtime.waitFor(() => mine().length > 0 && mine().every((i) => i.terminated && !i.alive), 90_000);
    },
    300_000,
  );
});
