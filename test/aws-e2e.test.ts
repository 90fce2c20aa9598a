/**
 * End to end on "AWS": moto plays AWS, the instance runtime boots every instance the Auto Scaling
 * groups launch from its real UserData, which fetches the real agent bundle from the bucket and
 * runs it with credentials from the metadata emulator. The CLI is the real `gq` as a subprocess.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStatusStore } from '../packages/common/src/aws/dynamo.js';
import { gq, gqEnv, testHome } from './support/cli.js';
import { motoClients, startMoto, warnSkipped, type Moto } from './support/moto.js';
import { startInstanceRuntime, type InstanceRuntime } from './support/instance-runtime.js';
import { startNodeMirror } from './support/node-mirror.mjs';
import { PINNED_NODE_VERSION } from '../packages/submitter/src/userdata.js';

const moto = await startMoto();
if (!moto) warnSkipped('test/aws-e2e.test.ts (AWS backend end to end): moto_server is not installed');
const d = moto ? describe : describe.skip;

const TYPES = ['t3.micro', 't3.small', 'c5.large'];
const JOB = 'e2e-aws';

function jobRows(): string[] {
  const rows: string[] = [];
  for (let i = 1; i <= 20; i++) {
    const type = TYPES[i % 3]!;
    // Every task writes a different results file; some fields need CSV quoting.
    rows.push(`${type},"printf 'i,sq,text\\n%d,%d,""row %d, of 20""\\n' ${i} $((${i}*${i})) ${i} > results.csv; gq-agent tag percent_complete 100"`);
  }
  return rows;
}

d('AWS backend on moto, end to end', () => {
  let m: Moto;
  let runtime: InstanceRuntime;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const stack = `gq-e2e-${process.pid}`;

  beforeAll(async () => {
    m = moto!;
    home = testHome('aws-e2e');
    const c = motoClients(m.endpoint);
    const images = await c.ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
    const ami = images.Images?.find((i) => i.ImageId)?.ImageId;
    expect(ami).toBeDefined();
    env = gqEnv(home, {
      GQ_BACKEND: 'aws',
      AWS_ENDPOINT_URL: m.endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      GQ_STACK: stack,
      GQ_AMI: ami!,
      GQ_IDLE: '3',
      GQ_VISIBILITY: '20',
      GQ_MAX_INSTANCES: '2',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    const mirror = await startNodeMirror(PINNED_NODE_VERSION); // stands in for nodejs.org
    const setup = await gq(['setup'], { ...env, GQ_NODE_MIRROR: mirror.url }, { timeoutMs: 120_000 }).finally(() => mirror.close());
    expect(setup.stderr + setup.stdout).not.toMatch(/internal error/);
    expect(setup.code, setup.stderr).toBe(0);
    runtime = await startInstanceRuntime({
      endpoint: m.endpoint,
      region: 'us-east-1',
      rootDir: join(home, 'instances'),
      groups: (g) => g.startsWith(`gq-${JOB}-`),
    });
  }, 180_000);

  afterAll(async () => {
    await runtime?.stop();
    await moto?.stop();
  });

  it('runs 20 tasks over three instance types and matches the local backend cell for cell', async () => {
    const code = join(home, 'code');
    mkdirSync(code, { recursive: true });
    writeFileSync(join(code, 'README'), 'task code\n');
    const jobfile = join(home, 'jobs.csv');
    writeFileSync(jobfile, ['instance_type,command', ...jobRows()].join('\n') + '\n');

    const sub = await gq(['submit', jobfile, '--code', code, '--name', JOB, '--wait', '--json'], env, { timeoutMs: Number(process.env.GQ_E2E_TIMEOUT ?? 240_000) });
    expect(sub.stderr).not.toMatch(/internal error/);
    expect(sub.code, `${sub.stderr}\n${runtime.errors.join('\n')}`).toBe(0);
    const final = JSON.parse(sub.stdout);
    expect(final).toMatchObject({ name: JOB, backend: 'aws', total: 20, counts: { queued: 0, running: 0, succeeded: 20, failed: 0, cancelled: 0 } });

    // The counters equal a count of the task items.
    const c = motoClients(m.endpoint);
    const outputs = JSON.parse((await gq(['status', JOB, '--json', '--tasks'], env)).stdout);
    expect(outputs.tasks.every((t: any) => t.state === 'SUCCEEDED' && t.tags.percent_complete === '100')).toBe(true);
    const table = (await import('../packages/submitter/src/aws/stack.js')).readStackOutputs;
    const { CloudFormationClient } = await import('@aws-sdk/client-cloudformation');
    const so = await table({ cfn: new CloudFormationClient({ region: 'us-east-1', endpoint: m.endpoint }), stackName: stack });
    const store = new DynamoStatusStore(c.ddb, { table: so.table });
    expect(await store.countTasksByState(JOB)).toEqual(final.counts);

    // Results: merged cell for cell equal to the same job on the local backend.
    const awsOut = join(home, 'aws-results');
    expect((await gq(['results', JOB, '--out', awsOut], env)).code).toBe(0);
    const localEnv = { ...gqEnv(home), GQ_HOME: join(home, 'local-gq') };
    expect((await gq(['submit', jobfile, '--code', code, '--name', JOB, '--workers', '2', '--wait'], localEnv, { timeoutMs: 120_000 })).code).toBe(0);
    const localOut = join(home, 'local-results');
    expect((await gq(['results', JOB, '--out', localOut], localEnv)).code).toBe(0);
    const a = parse(readFileSync(join(awsOut, 'results.csv'), 'utf8')) as string[][];
    const l = parse(readFileSync(join(localOut, 'results.csv'), 'utf8')) as string[][];
    expect(a).toHaveLength(21);
    expect(a).toEqual(l);
    expect(a[5]).toEqual(['5', '5', '25', 'row 5, of 20']);

    // Every instance terminated itself and every group is back to 0.
    await runtime.waitFor((is) => is.length > 0 && is.every((i) => i.terminated && !i.alive), 60_000);
    expect(runtime.shutdownAttempts()).toEqual([]);
    const groups = await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
    const ours = (groups.AutoScalingGroups ?? []).filter((g) => g.AutoScalingGroupName?.startsWith(`gq-${JOB}-`));
    expect(ours.map((g) => g.AutoScalingGroupName).sort()).toEqual(TYPES.map((t) => `gq-${JOB}-${t}`).sort());
    for (const g of ours) {
      expect(g.DesiredCapacity, g.AutoScalingGroupName).toBe(0);
      expect((g.Instances ?? []).filter((i) => i.LifecycleState === 'InService')).toEqual([]);
    }
    // Each instance left its boot log in the bucket (debugging without SSH).
    const logs = await c.s3.send(new ListObjectsV2Command({ Bucket: so.bucket, Prefix: `jobs/${JOB}/instances/` }));
    expect((logs.Contents ?? []).some((o) => o.Key?.endsWith('userdata.log'))).toBe(true);
  }, 300_000);
});
