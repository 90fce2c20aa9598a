/**
 * gq report's reading on the AWS backend (moto): the attempt history from DynamoDB's task items,
 * page by page, the instance records (lane labels, cost) and the tail of a failed task's log
 * from S3 (a ranged GetObject of its end), through the same gatherReport as on the local backend (its browser test runs the CLI).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keys, type InstanceRecord } from '@gq/common';
import { openAwsBackend, type AwsBackend } from '../packages/common/src/aws/index.js';
import { makeSpec } from '../packages/common/test/contract/status.contract.js';
import { gatherReport } from '../packages/cli/src/report/read.js';
import { reportHtml } from '../packages/cli/src/report/html.js';
import { createSharedResources, describeAws, motoClients, startMoto, type Moto } from './support/moto.js';

describeAws('gq report on the AWS backend (moto)', () => {
  let moto: Moto;
  let backend: AwsBackend;
  beforeAll(async () => {
    moto = (await startMoto())!;
    const { bucket, table } = await createSharedResources(moto.endpoint);
    backend = openAwsBackend({ region: 'us-east-1', bucket, table, clients: motoClients(moto.endpoint) });
  });
  afterAll(async () => {
    backend?.clients.destroy();
    await moto?.stop();
  });

  it('gathers the attempts, instances, cost and log tails from DynamoDB and S3', async () => {
    const name = `rep-aws-${Date.now().toString(36)}`;
    const st = backend.status;
    const TYPE = 'c5.large';
    await st.createJob(makeSpec(name, 2, { backend: 'aws', instanceTypes: { [TYPE]: 2 }, maxAttempts: 2 }), [
      { task: 1, instanceType: TYPE, command: 'julia run.jl 1' },
      { task: 2, instanceType: TYPE, command: 'julia run.jl 2' },
    ]);
    const spot = { instanceType: TYPE, lifecycle: 'spot' } as const;
    const fail = { kind: 'failed', exitCode: 7, error: 'exited with code 7', retryable: true, logKey: keys.taskLog(name, 2) } as const;
    await st.claim(name, 1, 'i-0aaa', 60_000, spot);
    await st.complete(name, 1, 'i-0aaa', { kind: 'released', reason: 'instance interrupted', interrupted: true });
    await st.claim(name, 1, 'i-0bbb', 60_000, { instanceType: TYPE, lifecycle: 'on-demand' });
    await st.complete(name, 1, 'i-0bbb', { kind: 'succeeded', exitCode: 0 });
    for (const i of ['i-0aaa', 'i-0bbb']) {
      await st.claim(name, 2, i, 60_000, spot);
      await st.complete(name, 2, i, fail);
    }
    // A log longer than the tail read of it (LOG_TAIL_BYTES): only its end is fetched.
    await backend.artifacts.putBytes(keys.taskLog(name, 2), Array.from({ length: 10_000 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
    const now = new Date().toISOString();
    const inst = (instance: string, lifecycle: 'spot' | 'on-demand', pricePerHour: number): InstanceRecord => ({
      job: name,
      instance,
      instanceType: TYPE,
      state: 'STOPPED',
      heartbeatAt: now,
      launchedAt: new Date(Date.now() - 600_000).toISOString(),
      endedAt: now,
      lifecycle,
      pricePerHour,
      tasksRun: 2,
      taskSeconds: 20,
    });
    await st.putInstance(inst('i-0aaa', 'spot', 0.04));
    await st.putInstance(inst('i-0bbb', 'on-demand', 0.085));

    const d = await gatherReport(backend, (await st.getJob(name))!, { region: 'us-east-1' });
    expect(d.bars!.map((b) => [b.task, b.attempt, b.lane, b.outcome]).sort()).toEqual([
      [1, 1, 'i-0aaa', 'interrupted'],
      [1, 2, 'i-0bbb', 'succeeded'],
      [2, 1, 'i-0aaa', 'failed'],
      [2, 2, 'i-0bbb', 'failed'],
    ]);
    expect(d.lanes.map((l) => [l.id, l.instanceType, l.lifecycle])).toEqual([
      ['i-0aaa', TYPE, 'spot'],
      ['i-0bbb', TYPE, 'on-demand'],
    ]);
    expect(d.failures).toEqual([expect.objectContaining({ task: 2, exitCode: 7, attempts: 2 })]);
    expect(d.failures[0]!.logTail!.split('\n')).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 9981}`));
    expect(d.types).toEqual([expect.objectContaining({ instanceType: TYPE, tasks: 2, succeeded: 1, failed: 1, attempts: 4, interruptions: 1, instances: 2 })]);
    // 10 minutes of each: 0.04 / 6 + 0.085 / 6 (plus their volumes) — a price, not "unknown".
    expect(d.spend).toBeGreaterThanOrEqual(0.02);
    expect(reportHtml(d)).toContain('line 10000');
  });
});
