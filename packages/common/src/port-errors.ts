/**
 * The errors the four ports (ports.ts) raise, the same classes from both backends: a caller tells
 * them apart with `instanceof` (or `name`, which is the class name), never by message text. Each
 * AWS adapter maps the service's own error (SQS QueueDoesNotExist, S3 NoSuchKey, a failed
 * DynamoDB condition...) onto one of these.
 */
import { GqError, UserError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// TaskQueue

/**
 * A receipt handle that no longer names the current delivery of a message (it was received again,
 * deleted, or dead-lettered), or that is not a receipt at all. Like SQS's ReceiptHandleIsInvalid
 * for ChangeMessageVisibility; `delete` with a stale receipt is silently ignored, as in SQS.
 */
export class ReceiptInvalidError extends GqError {
  readonly receipt: string;
  constructor(receipt: string, why = 'is not the current delivery of any message') {
    super(`Receipt handle ${receipt} ${why}.`);
    this.receipt = receipt;
  }
}

/** `open` of a queue that `ensure` never created (or that `remove` deleted), or a use of it after. */
export class QueueNotFoundError extends UserError {
  constructor(job: string, instanceType: string) {
    super(`No queue for job "${job}" and instance type "${instanceType}".`, {
      hint: 'The job was never submitted on this backend, or it was cleaned.',
    });
  }
}

/**
 * SQS refuses to create a queue under a name deleted less than 60 seconds ago
 * (QueueDeletedRecently, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html).
 * gq removes a finished job's queues: `gq retry` right after waits for the name (commands/retry.ts).
 * The local queue has no such rule and never raises it.
 */
export class QueueDeletedRecentlyError extends UserError {
  constructor(
    readonly queue: string,
    cause?: unknown,
  ) {
    super(`The queue ${queue} was deleted less than 60 seconds ago.`, {
      hint: 'SQS does not allow a queue name to be used again for 60 seconds after deleting it: wait a minute and submit again.',
      cause,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// StatusStore

/** A job that the status store does not know. */
export class JobNotFoundError extends UserError {
  constructor(job: string) {
    super(`No job named "${job}".`, { hint: 'Run `gq status` to list the jobs this backend knows.' });
  }
}

/** createJob of a name that another job (other code or another number of tasks) holds. */
export class JobExistsError extends UserError {
  constructor(old: { total: number; codeKey: string; createdAt: string }, spec: { name: string; total: number; codeKey: string }) {
    super(`Job "${spec.name}" already exists.`, {
      hint: 'Choose another job name, or clean the old job first (`gq clean`).',
      details: [
        `existing: ${old.total} tasks, code ${old.codeKey}, submitted ${old.createdAt}`,
        `new:      ${spec.total} tasks, code ${spec.codeKey}`,
      ],
    });
  }
}

/** setTag of a task that the job does not have. */
export class TaskNotFoundError extends UserError {
  constructor(
    readonly job: string,
    readonly task: number,
  ) {
    super(`No task ${task} in job "${job}".`);
  }
}

// ---------------------------------------------------------------------------------------------
// ArtifactStore

/** An artifact key that would escape the artifacts folder or is malformed. */
export class ArtifactKeyError extends UserError {
  readonly key: string;
  constructor(key: string, why: string) {
    super(`Invalid artifact key ${JSON.stringify(key)}: ${why}.`, {
      hint: 'Keys are relative, "/"-separated paths with no empty, "." or ".." segments and no backslashes.',
    });
    this.key = key;
  }
}

/** getBytes / getFile of a key that does not exist (S3's NoSuchKey). */
export class ArtifactNotFoundError extends GqError {
  readonly key: string;
  constructor(key: string) {
    super(`No artifact with key ${JSON.stringify(key)}.`);
    this.key = key;
  }
}
