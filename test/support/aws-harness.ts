/**
 * A whole "AWS account" for a test file: moto, the gq stack deployed by `gq setup`, the instance
 * runtime booting the instances of this file's jobs, and the environment for the `gq` CLI.
 *
 *   const h = await startAwsHarness('faults');   // undefined (and a loud warning) without moto
 *   await gq(['submit', ...], h.env)
 *   await h.stop()
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { join } from 'node:path';
import { openAwsBackend, type AwsBackend } from '../../packages/common/src/aws/index.js';
import { readStackOutputs, type StackOutputs } from '../../packages/cli/src/aws/stack.js';
import { gq, gqEnv, testHome } from './cli.js';
import { startInstanceRuntime, type InstanceRuntime } from './instance-runtime.js';
import { motoClients, startMoto, type Moto } from './moto.js';
import { startNodeMirror } from './node-mirror.mjs';
import { PINNED_NODE_VERSION } from '../../packages/cli/src/userdata.js';

export interface AwsHarness {
  moto: Moto;
  home: string;
  /** Environment for the gq CLI: aws backend, this stack, moto, short idle and visibility. */
  env: NodeJS.ProcessEnv;
  runtime: InstanceRuntime;
  bucket: string;
  table: string;
  /** The stack's outputs (its policies' ARNs among them). */
  outputs: StackOutputs;
  /** A backend on the same resources, for checks from the test. */
  backend: AwsBackend;
  stop(): Promise<void>;
}

export async function startAwsHarness(
  label: string,
  opts: {
    jobPrefix: string;
    env?: Record<string, string>;
    /** Endpoint the CLI and the instances use (e.g. a fault proxy in front of moto). */
    endpoint?: (moto: Moto) => string;
    /** GQ_TEST_FAULT etc. for the instances. */
    faultEnv?: Record<string, string>;
    /** Instances take their real-EC2 code paths (no endpoint overrides; see instance-runtime.ts). */
    realEc2?: boolean;
    /** File that every AWS call of the CLI and the instances is appended to (GQ_TEST_AWS_CALL_LOG), from after setup. */
    callLog?: string;
  },
): Promise<AwsHarness | undefined> {
  const moto = await startMoto();
  // Only reached inside describeAws, which skips (and reports) the file when there is no moto.
  if (!moto) throw new Error(`${label}: no moto, but the suite ran: register it with describeAws`);
  const endpoint = opts.endpoint ? opts.endpoint(moto) : moto.endpoint;
  const home = testHome(label);
  const c = motoClients(moto.endpoint);
  const images = await c.ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
  const ami = images.Images?.find((i) => i.ImageId)?.ImageId;
  if (!ami) throw new Error('moto offers no x86_64 image');
  c.destroy();
  const stack = `gq-${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${process.pid}`.slice(0, 60);
  const env = gqEnv(home, {
    GQ_BACKEND: 'aws',
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    GQ_STACK: stack,
    GQ_AMI: ami,
    GQ_IDLE: '3',
    GQ_VISIBILITY: '20',
    GQ_MAX_INSTANCES: '2',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...opts.env,
  });
  // gq setup stores the instances' Node.js in the bucket: from a local stand-in for nodejs.org,
  // kept for the file's life so that a test may run gq setup again (another stack) with h.env.
  const mirror = await startNodeMirror(PINNED_NODE_VERSION);
  env.GQ_NODE_MIRROR = mirror.url;
  const setup = await gq(['setup'], { ...env, AWS_ENDPOINT_URL: moto.endpoint }, { timeoutMs: 120_000 });
  if (setup.code !== 0) {
    await mirror.close();
    throw new Error(`gq setup failed: ${setup.stderr}`);
  }
  const cfn = new CloudFormationClient({ region: 'us-east-1', endpoint: moto.endpoint });
  const out = await readStackOutputs({ cfn, stackName: stack });
  cfn.destroy();
  const runtime = await startInstanceRuntime({
    endpoint,
    region: 'us-east-1',
    rootDir: join(home, 'instances'),
    groups: (g) => g.startsWith(`gq-${opts.jobPrefix}`),
    faultEnv: opts.faultEnv,
    realEc2: opts.realEc2,
    callLog: opts.callLog,
  });
  if (opts.callLog) env.GQ_TEST_AWS_CALL_LOG = opts.callLog;
  const backend = openAwsBackend({ region: 'us-east-1', bucket: out.bucket, table: out.table, clients: motoClients(moto.endpoint) });
  return {
    moto,
    home,
    env,
    runtime,
    bucket: out.bucket,
    table: out.table,
    outputs: out,
    backend,
    async stop() {
      await runtime.stop();
      backend.clients.destroy();
      await mirror.close();
      await moto.stop();
    },
  };
}
