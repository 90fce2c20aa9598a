/** A request that IAM did not allow, wherever it was made, as a UserError that says what to attach. */
import { UserError } from '@gq/common';

/** Error codes AWS services give a request IAM did not allow (S3, IAM, DynamoDB, SQS, EC2, Auto Scaling). */
const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'AuthorizationError']);

/** The UserError for an access-denied AWS error (by its code, never its text); undefined for anything else. */
export function accessDenied(e: unknown): UserError | undefined {
  if (e instanceof UserError || typeof e !== 'object' || e === null) return undefined;
  const { name, message } = e as { name?: unknown; message?: unknown };
  if (!ACCESS_DENIED.has(String(name ?? ''))) return undefined;
  return new UserError(`AWS refused a request: ${String(name)}.`, {
    // AWS's message names the action and the resource (ARNs, no secrets).
    details: [String(message ?? '').slice(0, 500)],
    hint: 'Attach the gq stack\'s user policy (stack output UserPolicyArn) to yourself: README "Permissions".',
    cause: e,
  });
}
