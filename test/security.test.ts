/**
 * Security on "AWS" (moto + the instance runtime), through the real CLI:
 *
 *  (a) A job submitted with `--license FILE` (a fake Gurobi licence holding distinctive random
 *      strings): the licence reaches the instance, where Gurobi looks for it (GRB_LICENSE_FILE,
 *      mode 0600), and appears NOWHERE else: not in any launch template's UserData, EC2 tag,
 *      Auto Scaling group tag, bucket object, status item once the job is finished (it is an
 *      encrypted item of the job's partition until then), log on the instances (console, userdata, agent, task logs) or
 *      output of any gq command (with --verbose too). The task proves the licence is in place
 *      by counting its bytes, never printing it.
 *  (b) What gq creates at submit: launch templates require IMDSv2, ask for no public IP, carry no
 *      key pair and terminate on shutdown; the stack's security group has no ingress; every
 *      queue has SQS-managed server-side encryption.
 *  (d) `gq --verbose` while talking to moto never shows the AWS secret access key or the licence.
 *  (The logger's redaction itself, (c), is unit-tested in packages/common/test/log.test.ts.)
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeAutoScalingGroupsCommand, DescribeTagsCommand as AsgDescribeTagsCommand } from '@aws-sdk/client-auto-scaling';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeTagsCommand,
  type LaunchTemplateVersion,
} from '@aws-sdk/client-ec2';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { parse } from 'csv-parse/sync';
import { gq, gqEnv, pidsMatching, testHome, waitFor, type CliResult } from './support/cli.js';
import { startAwsHarness, type AwsHarness } from './support/aws-harness.js';
import { describeAws } from './support/moto.js';
import { readStackOutputs } from '../packages/cli/src/aws/stack.js';

const slow = process.env.GQ_QUICK ? it.skip : it;

const JOB = 'sec-licence';
const TYPES = ['t3.micro', 't3.small'];

/** A fake licence in the format of a Gurobi WLS licence file; every value is random. */
const WLS_ACCESS_ID = randomUUID();
const WLS_SECRET = `gqsecret${randomBytes(16).toString('hex')}`;
const LICENSE_ID = String(2_000_000 + (randomBytes(3).readUIntBE(0, 3) % 900_000));
const LICENCE = `# Gurobi WLS license file\n# Your credentials are private and should not be shared or copied to public repositories.\nWLSACCESSID=${WLS_ACCESS_ID}\nWLSSECRET=${WLS_SECRET}\nLICENSEID=${LICENSE_ID}\n`;
/** The strings that must never appear: each value, the secret line, and the whole file. */
const LICENCE_NEEDLES = [WLS_ACCESS_ID, WLS_SECRET, `WLSSECRET=${WLS_SECRET}`, LICENCE.trim()];

/** The CLI's secret access key: random, 40 characters like a real one (moto accepts any). */
const AWS_SECRET = randomBytes(30).toString('base64').replace(/[+/]/g, 'x').slice(0, 40);

/**
 * The start of every session token the instances' metadata emulator hands out (test/support/
 * imds.ts): the instance role's credentials must not be written anywhere either.
 */
const ROLE_TOKEN = 'IQoJb3JpZ2luX2VjEImds';

/** Every place a needle was found, as "where: needle". */
function findIn(where: string, text: string, needles: readonly string[]): string[] {
  return needles.filter((n) => text.includes(n)).map((n) => `${where}: ${n.slice(0, 24)}...`);
}

function walkFiles(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walkFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describeAws('security on moto: the licence and the credentials leak nowhere', () => {
  let h: AwsHarness;
  let work: string;
  const cli: Array<{ args: string[]; r: CliResult }> = [];
  let submitted: CliResult;
  /** The job's templates, tags and queues as AWS described them while the job ran. */
  let snap: Snapshot;

  interface Snapshot {
    templates: Array<{ name: string; versions: LaunchTemplateVersion[] }>;
    ec2Tags: unknown[];
    groups: unknown[];
    asgTags: Array<{ Value?: string }>;
    queues: Array<{ url: string; attributes: Record<string, string> }>;
  }

  /** Undefined until every template, group and queue of the job exists. */
  async function snapshot(): Promise<Snapshot | undefined> {
    const c = h.backend.clients;
    const lts = (await c.ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: [JOB] }] }))).LaunchTemplates ?? [];
    const urls = ((await c.sqs.send(new ListQueuesCommand({ QueueNamePrefix: `gq-${JOB}-` }))).QueueUrls ?? []).sort();
    const groups = ((await c.autoscaling.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? []).filter((g) => g.AutoScalingGroupName?.startsWith(`gq-${JOB}-`));
    if (lts.length < TYPES.length || urls.length < TYPES.length * 2 || groups.length < TYPES.length) return undefined;
    const templates = [];
    for (const t of lts) {
      const versions = (await c.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: t.LaunchTemplateId }))).LaunchTemplateVersions ?? [];
      templates.push({ name: t.LaunchTemplateName ?? '', versions });
    }
    const queues = [];
    for (const url of urls) queues.push({ url, attributes: (await c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes ?? {} });
    return {
      templates,
      ec2Tags: (await c.ec2.send(new DescribeTagsCommand({ MaxResults: 1000 }))).Tags ?? [],
      groups,
      asgTags: (await c.autoscaling.send(new AsgDescribeTagsCommand({}))).Tags ?? [],
      queues,
    };
  }

  async function run(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
    const r = await gq(args, h.env, { cwd: work, timeoutMs: opts.timeoutMs ?? 60_000 });
    cli.push({ args, r });
    expect(`${r.stdout}${r.stderr}`, args.join(' ')).not.toMatch(/internal error/);
    return r;
  }

  beforeAll(async () => {
    h = (await startAwsHarness('security', { jobPrefix: 'sec-', env: { AWS_SECRET_ACCESS_KEY: AWS_SECRET } }))!;
    work = testHome('security-work');
    mkdirSync(join(work, 'code'), { recursive: true });
    writeFileSync(join(work, 'code', 'solve.sh'), [
      '#!/bin/bash',
      'set -euo pipefail',
      '# Prove the licence is where Gurobi looks for it, without printing it.',
      'bytes=$(cat "$GRB_LICENSE_FILE" | wc -c)',
      'mode=$(stat -c %a "$GRB_LICENSE_FILE")',
      'echo "licence file: $GRB_LICENSE_FILE, $bytes bytes, mode $mode"',
      'printf "task,bytes,mode\\n%s,%s,%s\\n" "$1" "$bytes" "$mode" > results.csv',
      '',
    ].join('\n'));
    writeFileSync(join(work, 'install.sh'), 'echo "install sees a licence of $(wc -c < "$GRB_LICENSE_FILE") bytes"\n');
    writeFileSync(join(work, 'gurobi.lic'), LICENCE, { mode: 0o600 });
    writeFileSync(join(work, 'jobs.csv'), ['instance_type,command', ...TYPES.map((t, i) => `${t},bash solve.sh ${i + 1}`)].join('\n') + '\n');
    const submitting = run(['submit', 'jobs.csv', '--code', 'code', '--install', 'install.sh', '--license', 'gurobi.lic', '--name', JOB, '--verbose', '--wait', '--json'], { timeoutMs: 180_000 });
    // What gq created for the job is read while it runs: --wait removes it once the workers left.
    snap = await waitFor('the job running on its instances', () => (h.runtime.instances().length >= TYPES.length ? snapshot() : undefined), 120_000, 200);
    submitted = await submitting;
    expect(submitted.code, `${submitted.stderr}\n${h.runtime.errors.join('\n')}`).toBe(0);
    // The instances leave by themselves once the queues are empty: then every log is complete.
    await h.runtime.waitFor((is) => is.length >= TYPES.length && is.every((i) => i.terminated && !i.alive), 90_000);
    await run(['status', '--verbose']);
    await run(['status', JOB, '--json', '--tasks', '--verbose']);
    await run(['results', JOB, '--out', join(work, 'results'), '--verbose']);
    await run(['logs', JOB, '1', '--verbose']);
    await run(['logs', JOB, '2']);
    for (const i of h.runtime.instances()) {
      const r = await run(['logs', JOB, '--instance', i.id, '--verbose']);
      expect(r.stdout).toContain(`install sees a licence of ${Buffer.byteLength(LICENCE)} bytes`);
    }
  }, 300_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('the licence reached each instance where Gurobi looks for it, readable by the owner only', () => {
    const results = parse(readFileSync(join(work, 'results', 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(results).toHaveLength(TYPES.length);
    for (const row of results) {
      expect(Number(row.bytes), 'bytes the task counted in $GRB_LICENSE_FILE').toBe(Buffer.byteLength(LICENCE));
      expect(row.mode).toBe('600');
    }
    const files = walkFiles(join(h.home, 'instances')).filter((p) => p.endsWith('gurobi.lic'));
    expect(files.length).toBeGreaterThanOrEqual(TYPES.length);
    for (const file of files) {
      expect(readFileSync(file, 'utf8')).toBe(LICENCE);
      expect(statSync(file).mode & 0o777, file).toBe(0o600);
      expect(statSync(join(file, '..')).mode & 0o077, `${file}: its folder is the owner's only`).toBe(0);
    }
  });

  it('appears in no launch template (UserData and every other field), EC2 tag or Auto Scaling tag', () => {
    const found: string[] = [];
    expect(snap.templates.map((t) => t.name).sort()).toEqual(TYPES.map((t) => `gq-${JOB}-${t}`).sort());
    let userDatas = 0;
    for (const t of snap.templates) {
      for (const v of t.versions) {
        const userData = Buffer.from(v.LaunchTemplateData?.UserData ?? '', 'base64').toString('utf8');
        expect(userData.startsWith('#!/bin/bash')).toBe(true);
        userDatas++;
        found.push(...findIn(`${t.name} v${v.VersionNumber} UserData`, userData, [...LICENCE_NEEDLES, AWS_SECRET]));
        found.push(...findIn(`${t.name} v${v.VersionNumber}`, JSON.stringify(v), [...LICENCE_NEEDLES, AWS_SECRET]));
      }
    }
    expect(userDatas).toBeGreaterThanOrEqual(TYPES.length);
    expect(JSON.stringify(snap.ec2Tags)).toContain(`"${JOB}"`); // the search did see gq's tags
    found.push(...findIn('EC2 tags', JSON.stringify(snap.ec2Tags), [...LICENCE_NEEDLES, AWS_SECRET]));
    expect(snap.asgTags.some((t) => t.Value === JOB)).toBe(true);
    found.push(...findIn('Auto Scaling groups', JSON.stringify(snap.groups), [...LICENCE_NEEDLES, AWS_SECRET]));
    found.push(...findIn('Auto Scaling tags', JSON.stringify(snap.asgTags), [...LICENCE_NEEDLES, AWS_SECRET]));
    expect(found).toEqual([]);
  });

  it('what the job ran on is gone once --wait returned (templates, groups, queues)', async () => {
    const c = h.backend.clients;
    const templates = (await c.ec2.send(new DescribeLaunchTemplatesCommand({ Filters: [{ Name: 'tag:gq:job', Values: [JOB] }] }))).LaunchTemplates ?? [];
    const urls = (await c.sqs.send(new ListQueuesCommand({ QueueNamePrefix: `gq-${JOB}-` }))).QueueUrls ?? [];
    expect({ templates: templates.length, queues: urls.length }).toEqual({ templates: 0, queues: 0 });
  });

  it('appears in no bucket object, and in no status item once the job is finished', async () => {
    const c = h.backend.clients;
    const found: string[] = [];
    let items = 0;
    let start: Record<string, any> | undefined;
    do {
      const page = await c.dynamodb.send(new ScanCommand({ TableName: h.table, ExclusiveStartKey: start }));
      for (const i of page.Items ?? []) {
        items++;
        found.push(...findIn(`item ${i.pk?.S} ${i.sk?.S}`, JSON.stringify(i), [...LICENCE_NEEDLES, AWS_SECRET, ROLE_TOKEN]));
      }
      start = page.LastEvaluatedKey;
    } while (start);
    expect(items).toBeGreaterThanOrEqual(1 + TYPES.length);

    // The bytes as stored, whatever checksum headers came with them.
    const raw = new S3Client({
      region: 'us-east-1',
      endpoint: h.moto.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await c.s3.send(new ListObjectsV2Command({ Bucket: h.bucket, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    // The licence is an item of the job's partition in the table, never an object.
    expect(keys.filter((k) => k.includes('/secret/'))).toEqual([]);
    expect(keys.filter((k) => k.startsWith(`jobs/${JOB}/tasks/`)).length).toBeGreaterThanOrEqual(TYPES.length);
    for (const key of keys) {
      found.push(...findIn(`object key ${key}`, key, [...LICENCE_NEEDLES, AWS_SECRET]));
      const obj = await raw.send(new GetObjectCommand({ Bucket: h.bucket, Key: key }));
      const body = Buffer.from(await obj.Body!.transformToByteArray()).toString('latin1');
      found.push(...findIn(`object ${key}`, body, [...LICENCE_NEEDLES, AWS_SECRET, ROLE_TOKEN]));
      found.push(...findIn(`object ${key} metadata`, JSON.stringify(obj.Metadata ?? {}), [...LICENCE_NEEDLES, AWS_SECRET]));
    }
    raw.destroy();
    // The licence item itself was deleted when the job finished (test/licence-lifecycle.test.ts).
    expect(found).toEqual([]);
  });

  it('appears in no log on the instances (console, userdata, agent, install and task logs)', () => {
    const files = walkFiles(join(h.home, 'instances')).filter((p) => !p.endsWith('gurobi.lic'));
    const logs = files.filter((p) => /\.(log|txt)$/.test(p) || p.includes('/logs/'));
    expect(logs.some((p) => p.endsWith('console.log'))).toBe(true);
    expect(logs.some((p) => p.endsWith('userdata.log'))).toBe(true);
    expect(logs.some((p) => p.endsWith('install.log'))).toBe(true);
    // Every file an instance wrote (the agent bundle and boot script included), not only logs.
    const found = files.flatMap((p) => findIn(relative(h.home, p), readFileSync(p, 'latin1'), [...LICENCE_NEEDLES, AWS_SECRET, ROLE_TOKEN]));
    expect(found).toEqual([]);
    // The task logs say where the licence is and how long it is, which is all a task should print.
    const consoles = files.filter((p) => p.endsWith('console.log')).map((p) => readFileSync(p, 'utf8')).join('\n');
    expect(consoles).toMatch(/gq-agent|gq-userdata/);
  });

  it('appears in no output of any gq command (stdout and stderr, --verbose included)', () => {
    expect(cli.length).toBeGreaterThanOrEqual(6);
    const found = cli.flatMap(({ args, r }) => findIn(`gq ${args.join(' ')}`, `${r.stdout}\n${r.stderr}`, [...LICENCE_NEEDLES, ROLE_TOKEN]));
    expect(found).toEqual([]);
    // The logs that gq logs printed are the real ones (so the search above looked at them).
    const logs = cli.find((c) => c.args[0] === 'logs' && c.args[2] === '1')!;
    expect(logs.r.stdout).toMatch(new RegExp(`licence file: .*gurobi\\.lic, ${Buffer.byteLength(LICENCE)} bytes, mode 600`));
  });

  it('(d) gq --verbose talking to moto shows debug detail but never the AWS secret access key', () => {
    const verbose = cli.filter((c) => c.args.includes('--verbose'));
    expect(verbose.length).toBeGreaterThanOrEqual(4);
    // --verbose really is verbose: the configuration and each step of the submission are logged.
    expect(submitted.stderr).toContain('"msg":"configuration"');
    expect(submitted.stderr).toContain('"msg":"licence stored"');
    expect(submitted.stderr).toContain('"msg":"tasks recorded"');
    const found = cli.flatMap(({ args, r }) => findIn(`gq ${args.join(' ')}`, `${r.stdout}\n${r.stderr}`, [AWS_SECRET, AWS_SECRET.slice(0, 20)]));
    expect(found).toEqual([]);
    expect(h.env.AWS_SECRET_ACCESS_KEY).toBe(AWS_SECRET);
  });

  it('(b) launch templates require IMDSv2, ask for no public IP, have no key pair, terminate on shutdown', () => {
    expect(snap.templates).toHaveLength(TYPES.length);
    for (const t of snap.templates) {
      expect(t.versions.length).toBeGreaterThan(0);
      for (const v of t.versions) {
        const data = v.LaunchTemplateData!;
        const name = `${t.name} v${v.VersionNumber}`;
        expect(data.MetadataOptions?.HttpTokens, name).toBe('required');
        expect(data.MetadataOptions?.HttpPutResponseHopLimit, name).toBe(1);
        expect(data.KeyName, name).toBeUndefined();
        expect(data.InstanceInitiatedShutdownBehavior, name).toBe('terminate');
        for (const ni of data.NetworkInterfaces ?? []) expect(ni.AssociatePublicIpAddress, name).not.toBe(true);
        expect(data.IamInstanceProfile?.Arn, name).toMatch(/instance-profile\/gq\//);
        expect(data.BlockDeviceMappings?.every((b) => b.Ebs?.Encrypted === true), name).toBe(true);
      }
    }
  });

  it('(b) the security group has no ingress rule', async () => {
    const cfn = new CloudFormationClient({ region: 'us-east-1', endpoint: h.moto.endpoint });
    try {
      const out = await readStackOutputs({ cfn, stackName: h.env.GQ_STACK! });
      const sg = (await h.backend.clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [out.securityGroupId] }))).SecurityGroups?.[0];
      expect(sg).toBeDefined();
      expect(sg!.IpPermissions ?? []).toEqual([]);
      // Egress is not checked here: moto ignores the stack's SecurityGroupEgress and keeps EC2's
      // default allow-all rule. The template's HTTPS-only egress is checked in infra.test.ts.
    } finally {
      cfn.destroy();
    }
  });

  it('(b) every queue of the job has server-side encryption (SqsManagedSseEnabled)', () => {
    // A queue and its dead-letter queue per instance type.
    expect(snap.queues).toHaveLength(TYPES.length * 2);
    for (const q of snap.queues) {
      expect(q.attributes.SqsManagedSseEnabled, q.url).toBe('true');
      expect(JSON.stringify(q.attributes)).not.toContain(WLS_SECRET);
    }
  });

  slow('a second submit with the same licence (resumed) still stores it once and prints nothing of it', async () => {
    const r = await run(['submit', 'jobs.csv', '--code', 'code', '--install', 'install.sh', '--license', 'gurobi.lic', '--name', JOB, '--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Resumed job sec-licence/);
    expect(findIn('resubmit', r.stdout + r.stderr, [...LICENCE_NEEDLES, AWS_SECRET])).toEqual([]);
  });
});

describe('security on the local backend: the licence is the owner\'s only and leaks nowhere', () => {
  it('gives it to tasks 0600, deletes it once the job is finished, and no other file or output holds it', async () => {
    const home = testHome('security-local');
    const env = gqEnv(home, { AWS_SECRET_ACCESS_KEY: AWS_SECRET });
    mkdirSync(join(home, 'code'), { recursive: true });
    writeFileSync(join(home, 'code', 'solve.sh'), 'printf "bytes,mode\\n%s,%s\\n" "$(cat "$GRB_LICENSE_FILE" | wc -c)" "$(stat -c %a "$GRB_LICENSE_FILE")" > results.csv\n');
    writeFileSync(join(home, 'install.sh'), 'echo "install sees $(wc -c < "$GRB_LICENSE_FILE") bytes"\n');
    writeFileSync(join(home, 'gurobi.lic'), LICENCE);
    writeFileSync(join(home, 'jobs.csv'), 'instance_type,command\nlocal,bash solve.sh\nlocal,bash solve.sh\n');
    const outputs: CliResult[] = [];
    const run = async (args: string[]) => {
      const r = await gq(args, env, { cwd: home, timeoutMs: 90_000 });
      outputs.push(r);
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    await run(['submit', 'jobs.csv', '--code', 'code', '--install', 'install.sh', '--license', 'gurobi.lic', '--name', 'sec-local', '--workers', '2', '--verbose', '--wait']);
    await run(['results', 'sec-local', '--out', join(home, 'out'), '--verbose']);
    await run(['logs', 'sec-local', '1', '--verbose']);
    await run(['status', 'sec-local', '--json', '--tasks', '--verbose']);
    await waitFor('workers to leave', async () => pidsMatching(home).length === 0, 30_000);

    const rows = parse(readFileSync(join(home, 'out', 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r.bytes, r.mode])).toEqual([
      [String(Buffer.byteLength(LICENCE)), '600'],
      [String(Buffer.byteLength(LICENCE)), '600'],
    ]);
    const gqHome = join(home, 'gq');
    // Stored owner-only while the job runs (packages/common/test/local/secrets.test.ts), and
    // deleted once it is finished (the last worker, or the next gq command that sees it).
    const stored = join(gqHome, 'artifacts', 'jobs', 'sec-local', 'secret', 'license');
    expect(existsSync(stored), 'the licence of the finished job is deleted').toBe(false);
    const copies = walkFiles(gqHome).filter((p) => p.endsWith('gurobi.lic'));
    for (const p of copies) expect(statSync(p).mode & 0o777, p).toBe(0o600);

    const others = walkFiles(gqHome).filter((p) => p !== stored && !p.endsWith('gurobi.lic'));
    expect(others.some((p) => p.endsWith('gq.db'))).toBe(true);
    const found = [
      ...others.flatMap((p) => findIn(relative(home, p), readFileSync(p, 'latin1'), [...LICENCE_NEEDLES, AWS_SECRET])),
      ...outputs.flatMap((r, i) => findIn(`command ${i}`, `${r.stdout}\n${r.stderr}`, [...LICENCE_NEEDLES, AWS_SECRET])),
    ];
    expect(found).toEqual([]);
  });
});
