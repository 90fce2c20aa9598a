/** What the agent loop is given: the ports and this worker's identity and folders. */
import type { Backend, Logger, TaskQueue } from '@gq/common';
import type { Workspace } from './workspace.js';

export interface AgentDeps {
  backend: Backend;
  queue: TaskQueue;
  ws: Workspace;
  job: string;
  instance: string;
  instanceType: string;
  log: Logger;
  /** Environment handed to install and tasks (the agent's own, minus anything secret). */
  baseEnv: NodeJS.ProcessEnv;
  /** JSON that `gq-agent tag` uses to reach the status store (no secrets). */
  contextJson: string;
  licenseFile?: string;
}
