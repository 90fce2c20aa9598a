/**
 * `gq-agent tag KEY VALUE`, run from inside a task: records a progress tag on the task (shown by
 * `gq status`) and, on EC2, on the instance's own tags (as the older tool's update_tags.py did).
 */
import { ENV, UserError } from '@gq/common';
import { contextFromEnv, openBackend } from './backend.js';
import { spoolTag, TAG_SPOOL_ENV } from './task-user.js';

const KEY_RE = /^[A-Za-z0-9_.:/=+@-]{1,64}$/;
const MAX_VALUE = 256;

export function validateTag(key: string, value: string): void {
  if (!KEY_RE.test(key)) {
    throw new UserError(`Tag key "${key}" is not valid.`, {
      hint: 'Use 1-64 characters: letters, digits and _ . : / = + @ - (for example percent_complete).',
    });
  }
  if (key.toLowerCase().startsWith('aws:') || key.toLowerCase().startsWith('gq:')) {
    throw new UserError(`Tag key "${key}" uses a reserved prefix (aws: or gq:).`, { hint: 'Choose another key.' });
  }
  if (value.length > MAX_VALUE) {
    throw new UserError(`Tag value is ${value.length} characters long; the limit is ${MAX_VALUE}.`, {
      hint: 'Shorten the value.',
    });
  }
}

export async function runTag(key: string, value: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  validateTag(key, value);
  const ctx = contextFromEnv(env[ENV.AGENT_CONTEXT]);
  const job = env[ENV.JOB];
  const task = Number(env[ENV.TASK]);
  if (!ctx || !job || !Number.isInteger(task) || task < 1) {
    throw new UserError('gq-agent tag must be called from inside a task run by gq.', {
      hint: `The agent sets ${ENV.JOB}, ${ENV.TASK} and ${ENV.AGENT_CONTEXT} for the task's command; they are missing here.`,
    });
  }
  // A task run as the task user has no AWS access: the agent records the tag for it.
  const spool = env[TAG_SPOOL_ENV];
  if (spool) return spoolTag(spool, { key, value });
  const backend = await openBackend(ctx, []);
  try {
    await backend.status.setTag(job, task, key, value);
    const instance = env[ENV.INSTANCE];
    if (ctx.backend === 'aws' && instance?.startsWith('i-')) {
      const { tagInstance } = await import('./aws/ec2-tags.js');
      await tagInstance(ctx.region, instance, key, value);
    }
  } finally {
    await backend.close();
  }
}
