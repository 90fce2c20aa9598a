/**
 * Opens the backend the agent was started for. The local backend (SQLite, native module) and the
 * AWS backend (SDK) are loaded only when used, so the EC2 bundle never needs the native module.
 */
import type { Backend } from '@gq/common';

/** How long a finished task's delete may wait to share a DeleteMessageBatch (SQS). */
const DELETE_BATCH_MS = 10_000;
/** The same on the local backend: the next receive comes within milliseconds when tasks are short. */
const LOCAL_DELETE_BATCH_MS = 1_000;
/** How long a local worker's record may wait for the next claim: `gq status` shows it that late at most. */
const LOCAL_HOLD_INSTANCE_MS = 100;
/** Instance-role credentials from IMDS: per-request timeout and retries. */
const IMDS_TIMEOUT_MS = 5_000;
const IMDS_RETRIES = 4;

export type AgentContext =
  | { backend: 'local'; home: string }
  | { backend: 'aws'; region: string; bucket: string; table: string };

export async function openBackend(ctx: AgentContext, agentCommand: readonly string[]): Promise<Backend> {
  if (ctx.backend === 'local') {
    const { openLocalBackend } = await import('@gq/common/local/index');
    // A finished task's delete goes out with the next receive, in its transaction (task-queue.ts),
    // the worker's record after it with the next claim (status-store.ts), and a receive that
    // delivers is committed with the claim that follows it (db.ts, withWriteLock `leaveOpen`):
    // one commit before a task starts instead of two.
    return openLocalBackend({
      home: ctx.home,
      agentCommand: [...agentCommand],
      deleteBatchMs: LOCAL_DELETE_BATCH_MS,
      holdInstanceMs: LOCAL_HOLD_INSTANCE_MS,
      leaveReceiveOpen: true,
    });
  }
  const { openAwsBackend } = await import('@gq/common/aws/index');
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  // A finished task's message is deleted in batches of up to 10 (within 10 s, flushed on leaving):
  // a tenth of a call per task instead of one when tasks are short.
  // The instance role comes from the metadata service, which can be slow to answer right after
  // boot or on a busy host: the SDK's defaults (1 s, no retry) would crash the agent at its first
  // call; give it 5 s and 4 retries (RemoteProviderInit of the default chain).
  return openAwsBackend({
    region: ctx.region,
    bucket: ctx.bucket,
    table: ctx.table,
    queue: { deleteBatchMs: DELETE_BATCH_MS },
    credentials: defaultProvider({ timeout: IMDS_TIMEOUT_MS, maxRetries: IMDS_RETRIES }),
  });
}

/** The context handed to tasks (for `gq-agent tag`): where the status store is, no secrets. */
export function contextFromEnv(json: string | undefined): AgentContext | undefined {
  if (!json) return undefined;
  try {
    const v = JSON.parse(json) as AgentContext;
    if (v.backend === 'local' && typeof v.home === 'string') return v;
    if (v.backend === 'aws' && typeof v.region === 'string' && typeof v.bucket === 'string' && typeof v.table === 'string') return v;
  } catch {
    /* fall through */
  }
  return undefined;
}
