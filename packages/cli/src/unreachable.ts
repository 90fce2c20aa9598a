/**
 * AWS out of reach (no network, a proxy or firewall in the way, an AWS_ENDPOINT_URL where nothing
 * answers), after the SDK's own retries: a UserError that says so and what to check, instead of
 * "internal error". Told apart by the error's system code (common/src/network-errors.ts).
 */
import { NETWORK_ERROR_CODES, UserError } from '@gq/common';

export function unreachable(e: unknown, env: NodeJS.ProcessEnv = process.env): UserError | undefined {
  if (e instanceof UserError || typeof e !== 'object' || e === null) return undefined;
  const { code, address, port, hostname, message } = e as { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; message?: unknown };
  if (!NETWORK_ERROR_CODES.has(String(code ?? ''))) return undefined;
  const where = typeof hostname === 'string' ? hostname : typeof address === 'string' ? `${address}${port !== undefined ? `:${String(port)}` : ''}` : undefined;
  const endpoint = env.AWS_ENDPOINT_URL;
  return new UserError(`Cannot reach AWS${where ? ` at ${where}` : ''} (${String(code)}), even after retries.`, {
    details: [String(message ?? '').slice(0, 300)],
    hint: endpoint
      ? `AWS_ENDPOINT_URL is set (${endpoint}): check that it answers, or unset it to use AWS itself. Then run the command again (gq submit resumes where it stopped).`
      : 'Check the network connection and any proxy (HTTPS_PROXY), then run the command again (gq submit resumes where it stopped).',
    cause: e,
  });
}
