/** The backend-neutral contract suites, run on the local (SQLite) backend. */
import { queueContract } from '../contract/queue.contract.js';
import { statusContract } from '../contract/status.contract.js';
import { openLocalBackend } from '../../src/local/index.js';
import { tempHome } from './helpers.js';

const dir = tempHome('contract');
const backend = openLocalBackend({ home: dir.home });
let open = 2;
async function release(): Promise<void> {
  if (--open === 0) {
    await backend.close();
    dir.remove();
  }
}

queueContract('local', async () => ({ queues: backend.queues, cleanup: release }), { concurrent: true });
statusContract('local', async () => ({
  status: backend.status,
  countByState: (job) => backend.status.countTasksByState(job),
  cleanup: release,
}), { concurrent: true });
