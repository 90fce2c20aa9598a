/**
 * End to end on "AWS": moto plays AWS, the instance runtime boots every instance the Auto Scaling
 * groups launch from its real UserData, which fetches the real agent bundle from the bucket and
 * runs it with credentials from the metadata emulator. The CLI is the real `gq` as a subprocess.
 *
 * Policy coverage: every AWS call of every gq command and of every agent in this run is recorded
 * (GQ_TEST_AWS_CALL_LOG, packages/common/src/aws/call-log.ts) and evaluated with an IAM
 * simulator against the policies of infra/gq.yaml as deployed: the user policy for the CLI, the
 * job's agent policy and boundary (with the role's gq-job tag) for the agents. A call that the
 * matching policy does not allow fails the test (test/support/iam-eval.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStatusStore } from '../packages/common/src/aws/status-store/index.js';
import { DynamoSecretStore } from '../packages/common/src/aws/secrets.js';
import { gq, gqEnv, testHome } from './support/cli.js';
import { describeAws, motoClients, startMoto, type Moto } from './support/moto.js';
import { startInstanceRuntime, type InstanceRuntime } from './support/instance-runtime.js';
import { agentPrincipal, collectSeen, evaluate, readKeyPolicy, readPolicy, toRequests, userPrincipal, type IamRequest } from './support/iam-eval.js';
import type { CallRecord } from '../packages/common/src/aws/call-log.js';
import { startNodeMirror } from './support/node-mirror.mjs';
import { PINNED_NODE_VERSION } from '../packages/cli/src/userdata.js';

const moto = await startMoto();

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

describeAws('AWS backend on moto, end to end', () => {
  let m: Moto;
  let runtime: InstanceRuntime;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let callLog: string;
  const stack = `gq-e2e-${process.pid}`;
  const LICENCE = 'WLSACCESSID=e2e-id\nWLSSECRET=e2e-secret-0123456789\nLICENSEID=2000002\n';

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
      // No GQ_AMI: the default AMI (Amazon Linux 2023 from its public SSM parameter), as a new user gets it.
      GQ_IDLE: '3',
      GQ_VISIBILITY: '20',
      GQ_MAX_INSTANCES: '2',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    // The first setup creates the stack, which takes an administrator (README "Permissions"):
    // its calls are not recorded. Every command after it is.
    const mirror = await startNodeMirror(PINNED_NODE_VERSION); // stands in for nodejs.org
    const setup = await gq(['setup'], { ...env, GQ_NODE_MIRROR: mirror.url }, { timeoutMs: 120_000 }).finally(() => mirror.close());
    expect(setup.stderr + setup.stdout).not.toMatch(/internal error/);
    expect(setup.code, setup.stderr).toBe(0);
    callLog = join(home, 'aws-calls.jsonl');
    env = { ...env, GQ_TEST_AWS_CALL_LOG: callLog };
    expect((await gq(['setup'], env, { timeoutMs: 120_000 })).code).toBe(0);
    runtime = await startInstanceRuntime({
      callLog,
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
    const licence = join(home, 'gurobi.lic');
    writeFileSync(licence, LICENCE, { mode: 0o600 });

    const sub = await gq(['submit', jobfile, '--code', code, '--name', JOB, '--license', licence, '--wait', '--json'], env, { timeoutMs: Number(process.env.GQ_E2E_TIMEOUT ?? 240_000) });
    expect(sub.stderr).not.toMatch(/internal error/);
    expect(sub.code, `${sub.stderr}\n${runtime.errors.join('\n')}`).toBe(0);
    const final = JSON.parse(sub.stdout);
    expect(final).toMatchObject({ name: JOB, backend: 'aws', total: 20, counts: { queued: 0, running: 0, succeeded: 20, failed: 0, cancelled: 0 } });

    // The counters equal a count of the task items.
    const c = motoClients(m.endpoint);
    const outputs = JSON.parse((await gq(['status', JOB, '--json', '--tasks'], env)).stdout);
    expect(outputs.tasks.every((t: any) => t.state === 'SUCCEEDED' && t.tags.percent_complete === '100')).toBe(true);
    const table = (await import('../packages/cli/src/aws/stack.js')).readStackOutputs;
    const { CloudFormationClient } = await import('@aws-sdk/client-cloudformation');
    const so = await table({ cfn: new CloudFormationClient({ region: 'us-east-1', endpoint: m.endpoint }), stackName: stack });
    const store = new DynamoStatusStore(c.ddb, { table: so.table });
    expect(await store.countTasksByState(JOB)).toEqual(final.counts);

    // Results: merged cell for cell equal to the same job on the local backend.
    const awsOut = join(home, 'aws-results');
    expect((await gq(['results', JOB, '--out', awsOut], env)).code).toBe(0);
    const localEnv = { ...gqEnv(home), GQ_HOME: join(home, 'local-gq') };
    expect((await gq(['submit', jobfile, '--code', code, '--name', JOB, '--license', licence, '--workers', '2', '--wait'], localEnv, { timeoutMs: 120_000 })).code).toBe(0);
    const localOut = join(home, 'local-results');
    expect((await gq(['results', JOB, '--out', localOut], localEnv)).code).toBe(0);
    const a = parse(readFileSync(join(awsOut, 'results.csv'), 'utf8')) as string[][];
    const l = parse(readFileSync(join(localOut, 'results.csv'), 'utf8')) as string[][];
    expect(a).toHaveLength(21);
    expect(a).toEqual(l);
    expect(a[5]).toEqual(['5', '5', '25', 'row 5, of 20']);

    // Every instance is gone, and the groups with them: --wait removed the finished job's
    // groups (and launch templates, queues and role: test/strand-aws.test.ts) without gq clean.
    await runtime.waitFor((is) => is.length > 0 && is.every((i) => i.terminated && !i.alive), 60_000);
    expect(runtime.shutdownAttempts()).toEqual([]);
    const groups = await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({}));
    const ours = (groups.AutoScalingGroups ?? []).filter((g) => g.AutoScalingGroupName?.startsWith(`gq-${JOB}-`));
    expect(ours.map((g) => g.AutoScalingGroupName)).toEqual([]);
    // Each instance left its boot log in the bucket (debugging without SSH).
    const logs = await c.s3.send(new ListObjectsV2Command({ Bucket: so.bucket, Prefix: `jobs/${JOB}/instances/` }));
    expect((logs.Contents ?? []).some((o) => o.Key?.endsWith('userdata.log'))).toBe(true);
    // The job is finished: its licence is gone (the last agent or the next command deleted it).
    expect(await new DynamoSecretStore(c.ddb, { table: so.table }).getLicence(JOB)).toBeUndefined();
  }, 300_000);

  it('every AWS call of the CLI and of the agents is allowed by the matching policy of infra/gq.yaml', async () => {
    // The commands not run above, so that their calls are covered too.
    const instance = runtime.instances()[0]!.id;
    for (const args of [['status'], ['logs', JOB, '1'], ['logs', JOB, '--instance', instance], ['retry', JOB, '--failed'], ['cancel', JOB], ['doctor'], ['clean', JOB]]) {
      const r = await gq(args, env, { timeoutMs: 120_000 });
      expect(r.stderr, args.join(' ')).not.toMatch(/internal error/);
    }
    const records = readFileSync(callLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CallRecord);
    const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
    const cfn = new CloudFormationClient({ region: 'us-east-1', endpoint: m.endpoint });
    const so = await (await import('../packages/cli/src/aws/stack.js')).readStackOutputs({ cfn, stackName: stack });
    const stackId = (await cfn.send(new DescribeStacksCommand({ StackName: stack }))).Stacks![0]!.StackId!;
    cfn.destroy();
    const iam = new IAMClient({ region: 'us-east-1', endpoint: m.endpoint });
    const policies = {
      agent: await readPolicy(iam, so.jobAgentPolicyArn),
      boundary: await readPolicy(iam, so.jobRoleBoundaryArn),
      user: await readPolicy(iam, so.userPolicyArn!),
      key: await readKeyPolicy(m.endpoint, so.kmsKeyArn!, 'us-east-1'),
    };
    iam.destroy();
    const account = { account: '123456789012', region: 'us-east-1', bucket: so.bucket, table: so.table, kmsKeyArn: so.kmsKeyArn!, stackId, jobRolePath: so.jobRolePath };
    const seen = collectSeen(records);

    const byWho = { cli: 0, agent: 0 };
    const checked = new Map<string, { who: string; req: IamRequest }>();
    for (const r of records) {
      const who = r.who === 'cli' ? 'cli' : `agent:${(JSON.parse(r.who) as { job: string }).job}`;
      byWho[who === 'cli' ? 'cli' : 'agent']++;
      for (const req of toRequests(r, account, seen)) checked.set(JSON.stringify([who, req.action, req.resource, req.context]), { who, req });
    }
    // The run did exercise both sides, and the calls that matter.
    expect(byWho.cli).toBeGreaterThan(20);
    expect(byWho.agent).toBeGreaterThan(20);
    const actions = new Set([...checked.values()].map((c) => `${c.who === 'cli' ? 'cli' : 'agent'} ${c.req.action}`));
    for (const a of ['cli iam:CreateRole', 'cli iam:PassRole', 'cli sqs:CreateQueue', 'cli autoscaling:CreateAutoScalingGroup', 'cli dynamodb:PutItem', 'cli dynamodb:BatchGetItem', 'cli s3:ListBucket', 'agent sqs:ReceiveMessage', 'agent dynamodb:GetItem', 'agent s3:PutObject', 'agent ec2:CreateTags', 'agent dynamodb:DeleteItem', 'agent autoscaling:TerminateInstanceInAutoScalingGroup']) {
      expect(actions, a).toContain(a);
    }
    if (process.env.GQ_TEST_SHOW_CALLS) console.log(JSON.stringify({ records: records.length, requests: checked.size, actions: [...actions].sort() }, null, 1));
    const refused: string[] = [];
    for (const { who, req } of checked.values()) {
      const principal = who === 'cli' ? userPrincipal(policies, account.account) : agentPrincipal(policies, account.account, account.region, who.slice('agent:'.length));
      const v = await evaluate(principal, req, account.account, policies.key);
      if (v.result !== 'Allowed') refused.push(`${who} ${req.action} ${req.resource} ${JSON.stringify(req.context)} (${req.origin}): ${v.result}${v.errors ? ` ${v.errors}` : ''}`);
    }
    expect(refused).toEqual([]);
  }, 300_000);
});
