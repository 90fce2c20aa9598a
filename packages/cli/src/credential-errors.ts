/**
 * The AWS error names that mean "no usable credentials", by kind. No SDK import: the CLI checks a
 * failed command's error against them before it loads the SDK to explain it (cli.ts), and
 * aws/stack.ts words each kind (credentialProblem).
 */

/** The SDK's provider chain found no credentials. */
export const NO_CREDENTIALS = new Set(['CredentialsProviderError']);
/** No SSO token (missing or expired session). */
export const NO_SSO_TOKEN = new Set(['TokenProviderError']);
/** AWS refused credentials that have expired. */
export const EXPIRED_CREDENTIALS = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired']);
/** AWS refused the credentials it got (unknown key, bad signature). */
export const REJECTED_CREDENTIALS = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'InvalidAccessKeyId',
  'AuthFailure',
  'IncompleteSignature',
]);

/** The name (or query-protocol Code) of an AWS error. */
export function awsErrorName(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown; code?: unknown } | undefined;
  return String(e?.name ?? e?.Code ?? e?.code ?? '');
}

/** Whether `err` is one of the credential errors above (by its name, never its text). */
export function isCredentialError(err: unknown): boolean {
  const name = awsErrorName(err);
  return [NO_CREDENTIALS, NO_SSO_TOKEN, EXPIRED_CREDENTIALS, REJECTED_CREDENTIALS].some((s) => s.has(name));
}
