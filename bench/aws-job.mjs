// bench/aws-job.mjs: what the benchmarks that run gq on moto share: running a command, the gq
// CLI's environment, the stack (`gq setup`), moto's x86 image, the stack's outputs, and the test
// support modules (the instance runtime...) compiled with esbuild into node_modules/.cache (the
// benchmarks run compiled JS only).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { REGION } from './moto.mjs';

const ROOT = resolve(import.meta.dirname, '..');
export const GQ = join(ROOT, 'packages', 'cli', 'bin', 'gq.js');
const creds = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export function run(cmd, args, env, opts = {}) {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

/** Environment of the gq CLI for this bench: aws backend on moto (or the proxy), its own home. */
export function gqEnv(home, endpoint, stack, ami, extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GQ_HOME: join(home, 'gq'),
    GQ_CONFIG: join(home, 'config.json'),
    XDG_CONFIG_HOME: join(home, '.config'),
    GQ_BACKEND: 'aws',
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: REGION,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    GQ_STACK: stack,
    GQ_AMI: ami,
    GQ_LOG_LEVEL: 'warn',
    ...extra,
  };
}

export async function setupStack(env) {
  // gq setup stores the instances' Node.js in the bucket: from a local stand-in for nodejs.org.
  const { startNodeMirror } = await import('../test/support/node-mirror.mjs');
  const { PINNED_NODE_VERSION } = await import('../packages/cli/dist/userdata.js');
  const mirror = await startNodeMirror(PINNED_NODE_VERSION);
  const r = await run(process.execPath, [GQ, 'setup'], { ...env, GQ_NODE_MIRROR: mirror.url }).finally(() => mirror.close());
  if (r.code !== 0) throw new Error(`gq setup failed:\n${r.stderr}`);
}

export async function x86Ami(endpoint) {
  const ec2 = new EC2Client({ region: REGION, endpoint, credentials: creds });
  const images = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
  ec2.destroy();
  const ami = images.Images?.find((i) => i.ImageId)?.ImageId;
  if (!ami) throw new Error('moto offers no x86_64 image');
  return ami;
}

/** A TypeScript module of test/support (e.g. 'instance-runtime'), compiled and imported. */
export async function loadSupport(name) {
  const outfile = join(ROOT, 'node_modules', '.cache', 'gq-bench', `${basename(name)}.mjs`);
  mkdirSync(join(outfile, '..'), { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'test', 'support', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return import(pathToFileURL(outfile).href);
}

export async function stackOutputs(endpoint, stack) {
  const cfn = new CloudFormationClient({ region: REGION, endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const out = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
  cfn.destroy();
  const o = Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((x) => [x.OutputKey, x.OutputValue]));
  const table = o.TableName;
  if (!table) throw new Error(`stack ${stack} has no table output: ${JSON.stringify(o)}`);
  return { table };
}

