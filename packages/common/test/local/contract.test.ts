/** The backend-neutral contract suites, run on the local (SQLite) backend. */
import { artifactContract } from '../contract/artifacts.contract.js';
import { fleetContract } from '../contract/fleet.contract.js';
import { queueContract } from '../contract/queue.contract.js';
import { statusContract } from '../contract/status.contract.js';
import { eventually } from '../contract/util.js';
import { LocalFleet, openLocalBackend, processAlive } from '../../src/local/index.js';
import { tempHome } from './helpers.js';

const dir = tempHome('contract');
const backend = openLocalBackend({ home: dir.home });
let open = 4;
async function release(): Promise<void> {
  if (--open === 0) {
    await backend.close();
    dir.remove();
  }
}

/** A stand-in agent for the fleet: idles until it is stopped (SIGTERM). */
const IDLE_AGENT = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];

queueContract('local', async () => ({ queues: backend.queues, cleanup: release }), { concurrent: true });
statusContract('local', async () => ({
  status: backend.status,
  countByState: (job) => backend.status.countTasksByState(job),
  cleanup: release,
}), { concurrent: true });
artifactContract('local', async () => ({ artifacts: backend.artifacts, cleanup: release }), { concurrent: true });
fleetContract('local', async () => ({
  fleet: new LocalFleet({ home: dir.home, agentCommand: IDLE_AGENT, status: backend.status, maxWorkers: 2 }),
  instanceType: 'local',
  otherType: 'local-big',
  max: 2,
  async cleanup(jobs) {
    // remove() stopped every worker process of the jobs: none may be left running.
    const pids = (await Promise.all(jobs.map((j) => backend.status.listInstances(j)))).flat().map((r) => r.pid);
    await eventually(async () => {
      if (pids.some((p) => processAlive(p))) throw new Error('a worker process of the fleet contract is still running');
    }, 10_000);
    await release();
  },
}));
