/**
 * The system error codes (Node's net and dns, undici's) of a connection that could not be made or
 * was lost: what the agent waits out and tries again (agent/src/retry.ts), and what a gq command
 * reports as AWS out of reach (cli/src/unreachable.ts). Told apart by the code, never the text.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
