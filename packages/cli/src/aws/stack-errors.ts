/**
 * Classifying the errors of the stack's AWS calls (pure): CloudFormation's ValidationErrors that
 * mean "nothing to update" or "no such stack", and credentials or permission problems turned into
 * a UserError that says how to fix them.
 */
import { UserError } from '@gq/common';
import { EXPIRED_CREDENTIALS, NO_CREDENTIALS, NO_SSO_TOKEN, REJECTED_CREDENTIALS } from '../credential-errors.js';

export function errName(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown; code?: unknown };
  return String(e?.name ?? e?.Code ?? e?.code ?? '');
}

export function errMessage(err: unknown): string {
  return String((err as { message?: unknown })?.message ?? err);
}

/**
 * "No updates are to be performed." CloudFormation has no error code of its own for this: it
 * answers UpdateStack with the generic ValidationError (HTTP 400), the same code it uses for a
 * missing stack or a bad parameter. So the name/Code tells us it is a ValidationError and only
 * the message, as a last resort, tells which one. The message has been stable for a decade.
 */
export function isNoUpdatesError(err: unknown): boolean {
  const name = errName(err);
  if (name && name !== 'ValidationError') return false;
  return /no updates are to be performed/i.test(errMessage(err));
}

/** DescribeStacks on an unknown name: ValidationError "Stack with id X does not exist". */
export function isStackMissingError(err: unknown): boolean {
  const name = errName(err);
  if (name && name !== 'ValidationError') return false;
  return /does not exist/i.test(errMessage(err));
}

export const CREDENTIALS_FIX =
  'Run `aws configure` (access keys) or `aws sso login` (SSO profile), or set AWS_PROFILE to a profile that works.';

/**
 * If `err` means "no usable AWS credentials", a one-line explanation with the fix; else
 * undefined. Never includes a credential value (only the error's name and our own words).
 */
export function credentialProblem(err: unknown): string | undefined {
  const name = errName(err);
  const msg = errMessage(err);
  if (NO_CREDENTIALS.has(name) || /could not load credentials/i.test(msg)) {
    return `No AWS credentials found. ${CREDENTIALS_FIX}`;
  }
  if (NO_SSO_TOKEN.has(name) || /sso.*(expired|token)|token.*sso/i.test(msg)) {
    return 'The AWS SSO session has expired or is missing. Run `aws sso login` (with --profile if you use one).';
  }
  if (EXPIRED_CREDENTIALS.has(name) || /expired/i.test(msg)) {
    return `The AWS credentials have expired (${name || 'expired'}). ${CREDENTIALS_FIX}`;
  }
  if (REJECTED_CREDENTIALS.has(name)) {
    return `AWS rejected the credentials (${name}). ${CREDENTIALS_FIX}`;
  }
  return undefined;
}

/** Turn a credentials error into a UserError; anything else is rethrown unchanged. */
export function rethrowAsUserError(err: unknown): never {
  const problem = credentialProblem(err);
  if (problem) {
    // The problem first, the fix on the hint line (the CLI may explain it further, see credentials.ts).
    const [first, ...rest] = problem.split(/(?<=[.)]) (?=[A-Z`])/);
    throw new UserError(first!, { hint: rest.join(' ') || CREDENTIALS_FIX, cause: err });
  }
  if (errName(err) === 'AccessDenied' || errName(err) === 'AccessDeniedException' || /not authorized/i.test(errMessage(err))) {
    throw new UserError(`AWS refused the request: ${errName(err)}`, {
      hint: '`gq setup` needs permission to create CloudFormation stacks with IAM, S3, DynamoDB, KMS and EC2 resources.',
      cause: err,
    });
  }
  throw err;
}
