/** The backend-neutral contract suites, run on the AWS backend against moto (never real AWS). */
import { afterAll } from 'vitest';
import { DescribeImagesCommand, DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import { artifactContract } from '../contract/artifacts.contract.js';
import { fleetContract } from '../contract/fleet.contract.js';
import { queueContract } from '../contract/queue.contract.js';
import { statusContract } from '../contract/status.contract.js';
import { AsgFleet, openAwsBackend, type AwsBackend } from '../../src/aws/index.js';
import { createSharedResources, describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';

let moto: Moto | undefined;
let backend: AwsBackend | undefined;
let opened: Promise<AwsBackend> | undefined;

/** One moto and one backend for all suites of this file (stopped after them, below). */
function open(): Promise<AwsBackend> {
  opened ??= (async () => {
    moto = await startMoto();
    if (!moto) throw new Error('moto vanished');
    const { bucket, table } = await createSharedResources(moto.endpoint);
    backend = openAwsBackend({ region: 'us-east-1', bucket, table, clients: motoClients(moto.endpoint) });
    return backend;
  })();
  return opened;
}

const release = async (): Promise<void> => {};

afterAll(async () => {
  backend?.clients.destroy();
  await moto?.stop();
});

describeAws('contracts on aws (moto)', () => {
  queueContract('aws (moto)', async () => ({ queues: (await open()).queues, cleanup: release }), { concurrent: true, atLeastOnce: true });
  statusContract(
    'aws (moto)',
    async () => {
      const b = await open();
      return { status: b.status, countByState: (job) => b.status.countTasksByState(job), cleanup: release };
    },
    // One test at a time: moto's DynamoDB is serialised (test/support/moto.ts), so concurrent
    // tests would only queue behind each other and stretch the 1 s lease tests past their margins.
    { concurrent: false },
  );
  artifactContract('aws (moto)', async () => ({ artifacts: (await open()).artifacts, cleanup: release }), { concurrent: true });
  fleetContract('aws (moto)', async () => {
    const { clients } = await open();
    // moto's default AMIs and default VPC; it launches the instances at once and never boots them.
    const imageId = (await clients.ec2.send(new DescribeImagesCommand({}))).Images![0]!.ImageId!;
    const subnetIds = (await clients.ec2.send(new DescribeSubnetsCommand({}))).Subnets!.slice(0, 2).map((s) => s.SubnetId!);
    return {
      fleet: new AsgFleet({
        autoscaling: clients.autoscaling,
        ec2: clients.ec2,
        launchSpec: async () => ({ imageId, subnetIds, userData: '#!/bin/bash\ntrue\n', maxInstances: 2, tags: {} }),
      }),
      instanceType: 't3.micro',
      otherType: 'c5.large',
      max: 2,
      cleanup: release,
    };
  });
});
