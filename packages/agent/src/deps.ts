/** What the agent loop is given: the ports and this worker's identity and folders. */
import type { Backend, Logger, TaskQueue } from '@gq/common';
import type { Workspace } from './workspace.js';
import type { TaskUser } from './task-user.js';
import type { Clock } from './clock.js';
import type { BillingFacts } from './usage.js';

export interface AgentDeps {
  backend: Backend;
  queue: TaskQueue;
  ws: Workspace;
  job: string;
  instance: string;
  instanceType: string;
  /** 'on-demand': a worker of a Spot job's on-demand group, on the type's on-demand queue (job/on-demand.ts). */
  pool?: 'on-demand';
  /** Told when an attempt sent its task to the on-demand queue (on-demand.ts; the loop counts them). */
  onMovedToOnDemand?: () => void;
  log: Logger;
  /** Environment handed to install and tasks (the agent's own, minus anything secret). */
  baseEnv: NodeJS.ProcessEnv;
  /** JSON that `gq-agent tag` uses to reach the status store (no secrets). */
  contextJson: string;
  licenseFile?: string;
  /** Run tasks as this unprivileged user (EC2); absent: as the agent's own user (local backend). */
  taskUser?: TaskUser;
  /** With taskUser: leave the instance role reachable to tasks (`gq submit --task-aws-access`). */
  taskAwsAccess?: boolean;
  /** EC2: a progress tag also goes on the instance's own tags (best effort). */
  tagInstance?: (key: string, value: string) => Promise<void>;
  /** Time for the loop, the heartbeat and the install (tests); default the real clock. */
  clock?: Clock;
  /** EC2: send the running attempt's output every few seconds (live-log.ts; `gq logs --follow` reads it). */
  liveLog?: boolean;
  /** How this instance is billed (usage.ts); default a local worker's: price 0. */
  billing?: BillingFacts;
}
