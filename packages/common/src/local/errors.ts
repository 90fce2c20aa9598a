/** Errors specific to the embedded local backend (the AWS adapter may map its own onto them). */
import { GqError, UserError } from '../errors.js';

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

/** `open` of a queue that `ensure` never created (or that `remove` deleted). */
export class QueueNotFoundError extends UserError {
  constructor(job: string, instanceType: string) {
    super(`No queue for job "${job}" and instance type "${instanceType}".`, {
      hint: 'The job was never submitted on this backend, or it was cleaned.',
    });
  }
}

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

/** A conditional write lost its version check. Cannot happen inside one SQLite write transaction. */
export class ConcurrentUpdateError extends GqError {}
