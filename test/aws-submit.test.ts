/**
 * Two promises of the AWS backend, checked on moto: the same code folder is uploaded once, and
 * `gq status NAME` makes the same number of DynamoDB reads whatever the size of the job (a failed
 * task at its end included).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallCounter, openAwsBackend } from '../packages/common/src/aws/index.js';
import { DEFAULT_COUNTER_SHARDS } from '../packages/common/src/aws/status-store/index.js';
import { nowIso, type JobSpec, type NewTask } from '../packages/common/src/index.js';
import { statusJson } from '../packages/cli/src/commands/status.js';
import { gq } from './support/cli.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { describeAws, motoClients } from './support/moto.js';

let h: AwsHarness | undefined;
beforeAll(async () => {
  h = await startAwsHarness('aws-submit', { jobPrefix: 'never-booted-' });
}, 180_000);
afterAll(async () => {
  await h?.stop();
});

// Without moto the harness warns loudly and these tests are skipped.

describeAws('AWS submit and status on moto', () => {
  it('uploads the code bundle once: a second submit of the same folder stores nothing new', async () => {
    if (!h) throw new Error('moto did not start');
    const code = join(h.home, 'code');
    mkdirSync(code, { recursive: true });
    writeFileSync(join(code, 'run.sh'), 'echo hi\n');
    const jobfile = join(h.home, 'jobs.csv');
    writeFileSync(jobfile, 'instance_type,command\nt3.micro,bash run.sh\n');
    // GQ_MAX_INSTANCES stays at its default; the runtime boots only groups named never-booted-*.
    const first = await gq(['submit', jobfile, '--code', code, '--name', 'bundle-one', '--json'], h.env, { timeoutMs: 120_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).codeUploaded).toBe(true);
    const second = await gq(['submit', jobfile, '--code', code, '--name', 'bundle-two', '--json'], h.env, { timeoutMs: 120_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).codeUploaded).toBe(false);
    const c = motoClients(h.moto.endpoint);
    const listed = await c.s3.send(new ListObjectsV2Command({ Bucket: h.bucket, Prefix: 'bundles/' }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toHaveLength(1);
    // A changed folder is a new bundle.
    writeFileSync(join(code, 'run.sh'), 'echo changed\n');
    const third = await gq(['submit', jobfile, '--code', code, '--name', 'bundle-three', '--json'], h.env, { timeoutMs: 120_000 });
    expect(JSON.parse(third.stdout).codeUploaded).toBe(true);
    for (const j of ['bundle-one', 'bundle-two', 'bundle-three']) await gq(['cancel', j], h.env);
    c.destroy();
  }, 300_000);

  it('gq status NAME makes the same number of DynamoDB reads for 10 and for 10,000 tasks', async () => {
    if (!h) throw new Error('moto did not start');
    const counter = createCallCounter();
    // Items read, not only calls: one paginated Query of every task would be one call for both.
    let itemsRead = 0;
    const itemCounter = (client: { middlewareStack: { add: Function } }, service: string) => {
      if (service !== 'DynamoDB') return;
      client.middlewareStack.add(
        (next: (a: unknown) => Promise<{ output: Record<string, unknown> }>) => async (args: unknown) => {
          const r = await next(args);
          const o = (r?.output ?? {}) as { Items?: unknown[]; Item?: unknown; Responses?: Record<string, unknown[]> };
          itemsRead += (o.Items?.length ?? 0) + (o.Item ? 1 : 0) + Object.values(o.Responses ?? {}).reduce((a, x) => a + (Array.isArray(x) ? x.length : 0), 0);
          return r;
        },
        { step: 'initialize', name: 'testItemCounter' },
      );
    };
    const backend = openAwsBackend({
      region: 'us-east-1',
      bucket: h.bucket,
      table: h.table,
      endpoint: h.moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      middleware: [counter.install, itemCounter as never],
    });
    const reads = async (name: string, n: number): Promise<{ calls: Record<string, number>; items: number }> => {
      const spec: JobSpec = {
        name, backend: 'aws', createdAt: nowIso(), total: n, instanceTypes: { 't3.micro': n }, codeKey: 'bundles/x.tar.gz',
        resultsPath: 'results.csv', outputs: [], maxAttempts: 3, timeoutSeconds: 0, installTimeoutSeconds: 60,
        installAttempts: 1, visibilitySeconds: 30, idleSeconds: 5,
      };
      const tasks: NewTask[] = Array.from({ length: n }, (_, i) => ({ task: i + 1, instanceType: 't3.micro', command: 'true' }));
      await backend.status.createJob(spec, tasks);
      // Some tasks running on two workers, so status reads their progress tags too.
      for (const [t, w] of [[1, 'i-1'], [2, 'i-2']] as const) {
        await backend.status.putInstance({ job: name, instance: w, instanceType: 't3.micro', state: 'READY', heartbeatAt: nowIso() });
        await backend.status.claim(name, t, w, 60_000);
      }
      // And the last task failed: its record is read from the index of FAILED tasks, not by
      // reading the 9,999 tasks before it.
      await backend.status.claim(name, n, 'i-3', 60_000);
      await backend.status.complete(name, n, 'i-3', { kind: 'failed', exitCode: 3, error: 'exited with code 3', retryable: false });
      counter.reset();
      itemsRead = 0;
      const job = (await backend.status.getJob(name))!;
      const s = await statusJson(backend, job, false);
      expect(s.total).toBe(n);
      expect(s.running).toHaveLength(2);
      expect(s.failures.map((f: { task: number }) => f.task)).toEqual([n]);
      return { calls: Object.fromEntries(Object.entries(counter.counts()).filter(([k]) => k.startsWith('DynamoDB.'))), items: itemsRead };
    };
    const small = await reads('reads-small', 10);
    const big = await reads('reads-big', 10_000);
    expect(Object.values(small.calls).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(big.calls).toEqual(small.calls);
    // The job item and its counter shards (read twice: by status, and by the failures read to
    // check the index against the failed counter), two instance items, two running tasks (and
    // their commands), the failed task: the same for both sizes.
    expect(small.items).toBeLessThan(20 + 2 * (1 + DEFAULT_COUNTER_SHARDS));
    expect(big.items).toBe(small.items);
    await backend.close();
  }, 300_000);
});
