/** The embedded local backend: SQLite for the queue and the status, a folder for artifacts, processes for the fleet. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../ports.js';
import { commitLeftOpen, openDb, type OpenDbOptions } from './db.js';
import { LocalQueueProvider } from './task-queue.js';
import { LocalStatusStore } from './status-store.js';
import { LocalArtifactStore } from './artifact-store.js';
import { LocalSecretStore } from './secrets.js';
import { LocalFleet } from './fleet.js';
import { LocalReaper } from './reaper.js';

export { openDb, migrate, dbPath, schemaVersion, SCHEMA_VERSION, withWriteLock, commitLeftOpen, type Db, type OpenDbOptions } from './db.js';
export { LocalQueueProvider, LocalTaskQueue, MAX_VISIBILITY_SECONDS, MAX_RECEIVE_BATCH, MAX_WAIT_SECONDS, type LocalQueueOptions } from './task-queue.js';
export { LocalStatusStore, countTasksByState, type LocalStatusOptions } from './status-store.js';
export { LocalArtifactStore } from './artifact-store.js';
export { checkKey } from '../artifact-keys.js';
export { LocalSecretStore } from './secrets.js';
export { LocalFleet, MAX_LOCAL_WORKERS, type LocalFleetOptions } from './fleet.js';
export { processAlive, processStartTime, workerAlive } from './procs.js';
export { LocalReaper } from './reaper.js';
// The port errors (port-errors.ts), here too for the tests and callers that import the backend.
export { ReceiptInvalidError, QueueNotFoundError, ArtifactKeyError, ArtifactNotFoundError } from '../port-errors.js';

export interface LocalBackendOptions {
  /** The data folder (gq.db, artifacts/, logs/). */
  home: string;
  /** How to start a worker; default: this Node with the workspace's packages/agent/bin/gq-agent.js. */
  agentCommand?: readonly string[];
  /** Cap on workers per (job, instance type), at most 256. */
  maxWorkers?: number;
  db?: OpenDbOptions;
  /** Clock for the queue and the status store (tests). */
  clock?: () => number;
  /** Hold a queue's deletes back to the next receive's transaction (LocalQueueOptions; the agent's side). */
  deleteBatchMs?: number;
  /** Hold the worker records back to the next claim's transaction (LocalStatusOptions; the agent's side). */
  holdInstanceMs?: number;
  /** Leave a receive's transaction open for the claim that follows (LocalQueueOptions; the agent's side). */
  leaveReceiveOpen?: boolean;
}

export interface LocalBackend extends Backend {
  readonly name: 'local';
  readonly home: string;
  readonly queues: LocalQueueProvider;
  readonly status: LocalStatusStore;
  readonly artifacts: LocalArtifactStore;
  readonly fleet: LocalFleet;
  readonly secrets: LocalSecretStore;
}

/** The agent next to this package in the workspace (packages/agent/bin/gq-agent.js), if there. */
export function defaultAgentCommand(): string[] {
  const bin = fileURLToPath(new URL('../../../agent/bin/gq-agent.js', import.meta.url));
  return existsSync(bin) ? [process.execPath, bin] : [];
}

export function openLocalBackend(opts: LocalBackendOptions): LocalBackend {
  const db = openDb(opts.home, opts.db);
  const clock = opts.clock;
  const status = new LocalStatusStore(db, { clock, holdInstanceMs: opts.holdInstanceMs });
  const artifacts = new LocalArtifactStore(opts.home);
  const reaper = new LocalReaper(db, opts.home, clock);
  return {
    name: 'local',
    home: opts.home,
    queues: new LocalQueueProvider(db, { clock, reap: (job) => reaper.reap(job), deleteBatchMs: opts.deleteBatchMs, leaveReceiveOpen: opts.leaveReceiveOpen }),
    status,
    artifacts,
    secrets: new LocalSecretStore(artifacts),
    fleet: new LocalFleet({
      home: opts.home,
      agentCommand: opts.agentCommand ?? defaultAgentCommand(),
      status,
      maxWorkers: opts.maxWorkers,
      reaper,
    }),
    async close() {
      commitLeftOpen(db); // a receive left open for its claim (leaveReceiveOpen)
      status.flush(); // held worker records (holdInstanceMs) are written before the connection goes
      if (db.open) db.close();
    },
  };
}
