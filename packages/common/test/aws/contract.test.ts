/** The backend-neutral contract suites, run on the AWS backend against moto (never real AWS). */
import { afterAll } from 'vitest';
import { queueContract } from '../contract/queue.contract.js';
import { statusContract } from '../contract/status.contract.js';
import { openAwsBackend, type AwsBackend } from '../../src/aws/index.js';
import { createSharedResources, describeAws, motoClients, startMoto, type Moto } from '../../../../test/support/moto.js';

let moto: Moto | undefined;
let backend: AwsBackend | undefined;
let opened: Promise<AwsBackend> | undefined;

/** One moto and one backend for both suites of this file (stopped after both, below). */
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
});
