/**
 * "Prove that nothing is lost": the network between gq and AWS fails, on moto, with the instance
 * runtime booting every worker from its real UserData. The CLI and the instances talk to moto
 * through a fault proxy (test/support/fault-proxy.ts); `gq setup` and the test's own checks talk
 * to moto directly.
 *
 *  1. the fault proxy itself: forwards, throttles with each service's real error (as the SDK
 *     sees it), refuses while down and comes back on the same port;
 *  2. the AWS endpoint goes away for 30 s in the middle of a job: the agents back off (a bounded
 *     number of attempts per agent per second, measured at the proxy), nothing is lost, the job
 *     ends with every task SUCCEEDED and the invariants hold;
 *  3. 20% of the SQS, DynamoDB and S3 requests are answered with throttling errors for a whole
 *     job (submit included): the SDK retries them, nothing is lost, the invariants hold.
 */
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAwsClients } from '../packages/common/src/aws/clients.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { gq, statusJson, testHome } from './support/cli.js';
import { startFaultProxy, type FaultProxy, type FaultProxyStats } from './support/fault-proxy.js';
import { checkInvariants } from './support/invariants.js';
import { describeAws, startMoto, type Moto } from './support/moto.js';

const slow = process.env.GQ_QUICK ? it.skip : it;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);

// ------------------------------------------------------------------------------------------------

describeAws('fault proxy in front of moto', () => {
  let moto: Moto;
  let proxy: FaultProxy;

  beforeAll(async () => {
    moto = (await startMoto())!;
    proxy = await startFaultProxy(moto.endpoint);
  });
  afterAll(async () => {
    await proxy?.close();
    await moto?.stop();
  });

  const clients = (maxAttempts: number) =>
    makeAwsClients({ region: 'us-east-1', endpoint: proxy.url, credentials: { accessKeyId: 'proxytest', secretAccessKey: 'x' }, maxAttempts });

  it('forwards, throttles with the services’ own errors, refuses while down and comes back on the same port', async () => {
    const one = clients(1);
    try {
      // Forwarding, streaming a body both ways.
      await one.s3.send(new CreateBucketCommand({ Bucket: 'proxy-test' }));
      const body = Buffer.alloc(3 * 1024 * 1024, 7);
      await one.s3.send(new PutObjectCommand({ Bucket: 'proxy-test', Key: 'big', Body: body }));
      const got = await one.s3.send(new GetObjectCommand({ Bucket: 'proxy-test', Key: 'big' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
      await one.sqs.send(new CreateQueueCommand({ QueueName: 'proxy-test' }));
      expect(proxy.stats().forwarded).toMatchObject({ s3: 3, sqs: 1 });

      // Every request throttled, no SDK retry: the error each service's client decodes.
      proxy.throttle({ fraction: 1, services: ['sqs', 'dynamodb', 's3'] });
      const errorOf = (p: Promise<unknown>) =>
        p.then(
          () => undefined,
          (e: Error & { $metadata?: { httpStatusCode?: number } }) => ({ name: e.name, status: e.$metadata?.httpStatusCode }),
        );
      expect(await errorOf(one.sqs.send(new GetQueueUrlCommand({ QueueName: 'proxy-test' })))).toEqual({ name: 'RequestThrottled', status: 400 });
      const ddbErrors = [await errorOf(one.dynamodb.send(new ListTablesCommand({}))), await errorOf(one.dynamodb.send(new ListTablesCommand({})))];
      expect(ddbErrors.map((e) => e?.name).sort()).toEqual(['ProvisionedThroughputExceededException', 'ThrottlingException']);
      expect(ddbErrors.every((e) => e?.status === 400)).toBe(true);
      expect(await errorOf(one.s3.send(new GetObjectCommand({ Bucket: 'proxy-test', Key: 'big' })))).toEqual({ name: 'SlowDown', status: 503 });
      expect(proxy.stats().throttled).toEqual({ sqs: 1, dynamodb: 2, s3: 1 });
      expect(proxy.stats().throttledByClient).toEqual({ proxytest: 4 });

      // The SDK retries a throttled call (here the next 2 SQS requests, and an S3 upload whose body
      // is a file stream: clients.ts makes it retryable) and gets it through.
      proxy.throttle(undefined);
      const eight = clients(8);
      try {
        const url = (await eight.sqs.send(new GetQueueUrlCommand({ QueueName: 'proxy-test' }))).QueueUrl!;
        proxy.throttle({ fraction: 1, services: ['sqs'], limit: 2 });
        const sent = await eight.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'hello' }));
        expect(sent.$metadata.attempts).toBe(3);
        const file = join(testHome('fault-proxy'), 'upload.txt');
        writeFileSync(file, 'results\n'.repeat(1000));
        proxy.throttle({ fraction: 1, services: ['s3'], limit: 1 });
        const put = await eight.s3.send(new PutObjectCommand({ Bucket: 'proxy-test', Key: 'streamed', Body: createReadStream(file), ContentLength: 8000 }));
        expect(put.$metadata.attempts).toBe(2);
        expect(proxy.stats().throttled).toEqual({ sqs: 3, dynamodb: 2, s3: 2 });
      } finally {
        eight.destroy();
      }
      proxy.throttle(undefined);

      // Down ('reset'): the request fails at once, and is counted against its service and client.
      const port = proxy.port;
      await proxy.down();
      await sleep(100); // the client notices that its kept-alive connection was closed
      const t0 = Date.now();
      const e1 = await errorOf(one.sqs.send(new GetQueueUrlCommand({ QueueName: 'proxy-test' })));
      expect(e1).toBeDefined();
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(proxy.stats().refused).toMatchObject({ sqs: 1 });
      expect(proxy.stats().refusedByClient).toMatchObject({ proxytest: 1 });
      await proxy.up();
      expect(proxy.port).toBe(port);
      await one.sqs.send(new GetQueueUrlCommand({ QueueName: 'proxy-test' }));

      // Down ('close'): a real ECONNREFUSED, then up again on the same port.
      await proxy.down({ mode: 'close' });
      const refused = await new Promise<string>((res) => {
        const r = request(`${proxy.url}/`, { method: 'GET' }, () => res('answered'));
        r.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
        r.end();
      });
      expect(refused).toBe('ECONNREFUSED');
      await proxy.up();
      expect(proxy.url).toBe(`http://127.0.0.1:${port}`);
      await one.sqs.send(new GetQueueUrlCommand({ QueueName: 'proxy-test' }));
    } finally {
      one.destroy();
    }
  });
});

// ------------------------------------------------------------------------------------------------

const TYPES = ['t3.micro', 't3.small'];

/** 10 tasks over two instance types, each sleeping 1 s and writing a one-row results file. */
function writeJob(dir: string, name: string, n = 10): { jobfile: string; code: string } {
  const code = join(dir, `${name}-code`);
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'README'), 'task code\n');
  const rows = ['instance_type,command'];
  for (let i = 1; i <= n; i++) {
    rows.push(`${TYPES[i % TYPES.length]},"sleep 1; printf 'id,square\\n%d,%d\\n' ${i} $((${i}*${i})) > results.csv; echo task ${i} done"`);
  }
  const jobfile = join(dir, `${name}.csv`);
  writeFileSync(jobfile, rows.join('\n') + '\n');
  return { jobfile, code };
}

/** The job's counters read from moto directly (never through the proxy). */
async function counts(h: AwsHarness, job: string) {
  const j = await h.backend.status.getJob(job);
  return j?.counts;
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Agents are the clients with their own (instance role) keys; the CLI and the harness use `testing`. */
const agentEntries = (m: Record<string, number>) => Object.entries(m).filter(([k]) => k !== 'testing' && k !== 'unsigned');

function describeStats(s: FaultProxyStats): string {
  return JSON.stringify(s);
}

describeAws('network faults between gq and AWS (moto, instance runtime)', () => {
  let proxy: FaultProxy;
  let h: AwsHarness | undefined;
  let dir: string;

  beforeAll(async () => {
    if (process.env.GQ_QUICK) return;
    proxy = await startFaultProxy();
    h = await startAwsHarness('network-faults', {
      jobPrefix: 'net-',
      endpoint: (m) => {
        proxy.setUpstream(m.endpoint);
        return proxy.url;
      },
    });
    dir = testHome('network-faults-jobs');
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
    await proxy?.close();
  });

  async function finish(job: string, timeoutMs: number): Promise<void> {
    await waitUntil(
      `job ${job} to finish`,
      async () => {
        const c = await counts(h!, job);
        return c && c.queued + c.running === 0 && c.succeeded + c.failed + c.cancelled > 0;
      },
      timeoutMs,
    );
  }

  async function checkAll(job: string, total: number): Promise<void> {
    const st = await statusJson(job, h!.env, true);
    expect(st).toMatchObject({ name: job, total, counts: { queued: 0, running: 0, succeeded: total, failed: 0, cancelled: 0 } });
    expect(st.tasks.map((t: { state: string }) => t.state)).toEqual(Array(total).fill('SUCCEEDED'));
    // Every task writes a one-row results file.
    await checkInvariants({ status: h!.backend.status, artifacts: h!.backend.artifacts, job, env: h!.env, out: join(dir, `${job}-results`), results: 'every-task', idColumn: 'id' });
    // Every worker left on its own (idle), none was left running or crashed.
    const mine = () => h!.runtime.instances().filter((i) => i.group.startsWith(`gq-${job}-`));
    await h!.runtime.waitFor(() => mine().length > 0 && mine().every((i) => i.terminated && !i.alive), 90_000);
    for (const i of mine()) expect(h!.runtime.consoleLog(i.id), i.id).not.toMatch(/internal error|Unhandled|uncaught/i);
    expect(h!.runtime.shutdownAttempts()).toEqual([]);
  }

  slow(
    'the AWS endpoint goes away for 30 s mid-run: agents back off, the job completes, nothing is lost',
    async () => {
      const job = 'net-outage';
      const { jobfile, code } = writeJob(dir, job);
      const sub = await gq(['submit', jobfile, '--code', code, '--name', job, '--json'], h!.env, { timeoutMs: 120_000 });
      expect(sub.code, sub.stderr).toBe(0);

      // Mid-run: a task has finished, others are running or queued, and every worker booted is
      // past its start (job read, code unpacked): the outage hits the task loop, not a boot.
      await waitUntil(
        'the first task to succeed with every worker started',
        async () => {
          if (((await counts(h!, job))?.succeeded ?? 0) < 1) return false;
          const booted = h!.runtime.instances().filter((i) => i.group.startsWith(`gq-${job}-`)).map((i) => i.id);
          const ready = new Set(
            (await h!.backend.status.listInstances(job)).filter((i) => ['READY', 'BUSY', 'IDLE'].includes(i.state)).map((i) => i.instance),
          );
          return booted.length > 0 && booted.every((id) => ready.has(id));
        },
        120_000,
        100,
      );
      const atDown = await counts(h!, job);
      const mine = () => h!.runtime.instances().filter((i) => i.group.startsWith(`gq-${job}-`));
      const agentExited = (id: string) => /gq-agent exited/.test(h!.runtime.consoleLog(id));
      const running = () => mine().filter((i) => i.alive && !agentExited(i.id)).map((i) => i.id).sort();
      const agentsAtDown = running();

      proxy.resetStats();
      await proxy.down();
      const t0 = Date.now();
      await sleep(30_000);
      const outage = proxy.stats();
      const outageSeconds = (Date.now() - t0) / 1000;
      await proxy.up();
      const agentsAfter = running();

      const perAgent = agentEntries(outage.refusedByClient).map(([, n]) => n / outageSeconds);
      console.log(
        `[network-faults] outage ${outageSeconds.toFixed(1)} s at counts ${JSON.stringify(atDown)}; ` +
          `${agentsAtDown.length} agents running at down, ${agentsAfter.length} after; refused requests by service ${JSON.stringify(outage.refused)}, ` +
          `by client ${JSON.stringify(outage.refusedByClient)}; connections refused ${outage.refusedConnections}; ` +
          `per agent per second ${perAgent.map((x) => x.toFixed(2)).join(', ')}`,
      );
      // The agents tried (so the outage was seen) but did not spin: a hot loop on an immediate
      // connection error runs at hundreds of requests per second; the SDK's retries (8 attempts,
      // jittered exponential backoff, a retry-token bucket) and the agent's own backoff (1 s
      // doubling to 30 s) keep each agent near 1 request per second — bound it at 5.
      expect(agentEntries(outage.refusedByClient).length, describeStats(outage)).toBeGreaterThan(0);
      for (const r of perAgent) expect(r, describeStats(outage)).toBeLessThan(5);
      // No agent left or died during the outage because AWS could not be reached.
      expect(agentsAfter, agentsAtDown.map((id) => `${id}:\n${h!.runtime.consoleLog(id).slice(-3000)}`).join('\n')).toEqual(agentsAtDown);

      await finish(job, 150_000);
      await checkAll(job, 10);
    },
    300_000,
  );

  slow(
    '20% of SQS, DynamoDB and S3 requests are throttled for a whole job: the SDK retries, nothing is lost',
    async () => {
      const job = 'net-throttle';
      const { jobfile, code } = writeJob(dir, job);
      proxy.resetStats();
      // S3 too: its uploads stream files, which the SDK retries only because clients.ts buffers them.
      proxy.throttle({ fraction: 0.2, services: ['sqs', 'dynamodb', 's3'], seed: 42 });
      const t0 = Date.now();
      try {
        const sub = await gq(['submit', jobfile, '--code', code, '--name', job, '--json'], h!.env, { timeoutMs: 120_000 });
        expect(sub.code, sub.stderr).toBe(0);
        await finish(job, 180_000);
      } finally {
        proxy.throttle(undefined);
      }
      const s = proxy.stats();
      const agentThrottled = agentEntries(s.throttledByClient).reduce((a, [, n]) => a + n, 0);
      console.log(
        `[network-faults] throttling run ${((Date.now() - t0) / 1000).toFixed(1)} s: seen ${JSON.stringify(s.seen)}, ` +
          `throttled ${JSON.stringify(s.throttled)} (agents ${agentThrottled}, CLI ${s.throttledByClient.testing ?? 0}), ` +
          `forwarded ${JSON.stringify(s.forwarded)}`,
      );
      expect(s.throttled.sqs ?? 0, describeStats(s)).toBeGreaterThan(0);
      expect(s.throttled.dynamodb ?? 0, describeStats(s)).toBeGreaterThan(0);
      expect(s.throttled.s3 ?? 0, describeStats(s)).toBeGreaterThan(0);
      expect(agentThrottled, describeStats(s)).toBeGreaterThan(0);
      // About a fifth of what was seen was throttled (the choice is seeded, not exact).
      const share = sum(s.throttled) / ((s.seen.sqs ?? 0) + (s.seen.dynamodb ?? 0) + (s.seen.s3 ?? 0));
      expect(share).toBeGreaterThan(0.1);
      expect(share).toBeLessThan(0.3);
      await checkAll(job, 10);
    },
    300_000,
  );
});
