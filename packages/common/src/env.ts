/**
 * Every environment variable gq reads or sets, in one place; the settings' own (GQ_BACKEND,
 * GQ_REGION, ...) are named from the setting by config/schema.ts envNameOf.
 */
export const ENV = {
  /** Root of the local backend's state and artifacts (overrides XDG). */
  HOME: 'GQ_HOME',
  CONFIG: 'GQ_CONFIG',
  LOG_LEVEL: 'GQ_LOG_LEVEL',
  /** Set by the agent for the task's command, read by `gq-agent tag`. */
  JOB: 'GQ_JOB',
  TASK: 'GQ_TASK',
  INSTANCE: 'GQ_INSTANCE',
  INSTANCE_TYPE: 'GQ_INSTANCE_TYPE',
  ATTEMPT: 'GQ_ATTEMPT',
  /** Folder with the task's copy of the code (also its working directory). */
  TASK_DIR: 'GQ_TASK_DIR',
  /** The task's checkpoint folder: kept across an interrupted attempt (agent/src/checkpoint.ts). */
  CHECKPOINT_DIR: 'GQ_CHECKPOINT_DIR',
  /** Tells `gq-agent tag` how to reach the status store (JSON, no secrets). */
  AGENT_CONTEXT: 'GQ_AGENT_CONTEXT',
  /** Tests only: file that every AWS SDK call is appended to (aws/call-log.ts). */
  TEST_AWS_CALL_LOG: 'GQ_TEST_AWS_CALL_LOG',
  /** Tests only: which instance makes the calls (JSON: job, instance, group). */
  TEST_AWS_CALL_WHO: 'GQ_TEST_AWS_CALL_WHO',
} as const;
