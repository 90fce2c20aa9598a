/**
 * Logging with pino. Secrets are redacted at the logger: known secret-bearing keys anywhere in a
 * logged object, and any string registered with `registerSecret` (the licence text, credentials)
 * wherever it appears in a message.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'licence',
  'license',
  'password',
  'secret',
  'secretAccessKey',
  'sessionToken',
  'accessKeyId',
  'credentials',
  'authorization',
  '*.licence',
  '*.license',
  '*.password',
  '*.secret',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.accessKeyId',
  '*.credentials',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  '*.headers["x-amz-security-token"]',
];

const secrets = new Set<string>();

/** Register a secret value so that it never leaves the logger in clear. */
export function registerSecret(value: string | undefined): void {
  if (!value) return;
  for (const line of value.split(/\r?\n/)) {
    const v = line.trim();
    if (v.length >= 6) secrets.add(v);
  }
  if (value.trim().length >= 6) secrets.add(value.trim());
}

/** Replace every registered secret in `text` by [REDACTED]. */
export function redactText(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  }
  return out;
}

export interface LogOptions {
  level?: LevelWithSilent;
  /** Write to this file descriptor (default 2, stderr). */
  fd?: number;
  base?: Record<string, unknown>;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? ((process.env.GQ_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info');
  return pino(
    {
      level,
      base: opts.base ?? {},
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: {
        streamWrite(s: string) {
          return secrets.size ? redactText(s) : s;
        },
      },
    },
    pino.destination({ fd: opts.fd ?? 2, sync: true }),
  );
}
