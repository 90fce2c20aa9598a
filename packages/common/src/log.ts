/**
 * Logging with pino. Secrets are redacted at the logger: known secret-bearing keys anywhere in a
 * logged object, and any string registered with `registerSecret` (the licence text, credentials)
 * wherever it appears in a message.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { ENV } from './env.js';

export type { Logger };

/**
 * pino's redaction paths: the only redaction that reaches child-logger bindings (`log.child({...})`),
 * which the log formatter below never sees; not dead, though SECRET_KEYS repeats most of them.
 */
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
  'headers.Authorization',
  '*.headers.Authorization',
  'headers["x-amz-security-token"]',
  '*.headers["x-amz-security-token"]',
  '*.*.secretAccessKey',
  '*.*.sessionToken',
  '*.*.credentials',
  '*.*.authorization',
];

/**
 * Keys whose values are censored at any depth of a logged object, compared case-insensitively
 * and ignoring "-" and "_" (Authorization, x-amz-security-token, AWS_SECRET_ACCESS_KEY, ...).
 * The pino paths above cover the usual places cheaply; this catches the rest, however deep.
 */
const SECRET_KEYS = new Set(
  [
    'licence',
    'license',
    'licenceText',
    'licenseText',
    'password',
    'secret',
    'secretAccessKey',
    'awsSecretAccessKey',
    'sessionToken',
    'awsSessionToken',
    'securityToken',
    'xAmzSecurityToken',
    'credentials',
    'authorization',
    'proxyAuthorization',
    'cookie',
    'setCookie',
    'token',
  ].map((k) => normKey(k)),
);

function normKey(k: string): string {
  return k.toLowerCase().replace(/[-_]/g, '');
}

const CENSOR = '[REDACTED]';

/** A copy of `value` with the values of secret keys censored, at any depth (cycles and depth bounded). */
function censorDeep(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object' || depth > 12) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => censorDeep(v, depth + 1, seen));
  if (value instanceof Error || Buffer.isBuffer(value) || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.has(normKey(k)) && v !== undefined && v !== null ? CENSOR : censorDeep(v, depth + 1, seen);
  }
  return out;
}

const secrets = new Set<string>();
/** Secrets longest first, so that a secret containing another is replaced whole. */
let ordered: string[] = [];

function addSecret(v: string): void {
  if (v.length < 6 || secrets.has(v)) return;
  secrets.add(v);
  // As it appears inside JSON (a log line): quotes, backslashes and control characters escaped.
  const json = JSON.stringify(v).slice(1, -1);
  if (json !== v) secrets.add(json);
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/**
 * Register a secret value so that it never leaves the logger in clear: the whole value, each of
 * its lines of 6 characters or more, the value part of each KEY=value line, and each of these as
 * it looks inside a JSON string.
 */
export function registerSecret(value: string | undefined): void {
  if (!value) return;
  for (const line of value.split(/\r?\n|\r/)) {
    addSecret(line.trim());
    // KEY=value and KEY: value lines (a gurobi.lic): the value alone is the secret part.
    const kv = /^\s*[A-Za-z_][A-Za-z0-9_.-]*\s*[=:]\s*(.+?)\s*$/.exec(line);
    if (kv?.[1]) addSecret(kv[1].replace(/^(["'])(.*)\1$/, '$2'));
  }
  addSecret(value.trim());
  addSecret(value);
}

/** Whether any secret has been registered in this process. */
export function hasSecrets(): boolean {
  return ordered.length > 0;
}

/** Replace every registered secret in `text` by [REDACTED]. */
export function redactText(text: string): string {
  if (ordered.length === 0) return text;
  let out = text;
  for (const s of ordered) {
    if (out.includes(s)) out = out.split(s).join(CENSOR);
  }
  return out;
}

/**
 * Overwrite every registered secret in `buf` with "*", byte for byte (the live log keeps its
 * offsets: live-log.ts). Returns how many bytes at its end may be the start of a secret still
 * being written (the caller holds them back until more follows).
 */
export function maskSecrets(buf: Buffer): number {
  let held = 0;
  for (const s of ordered) {
    const sb = Buffer.from(s);
    for (let i = buf.indexOf(sb); i >= 0; i = buf.indexOf(sb, i + sb.length)) buf.fill(0x2a, i, i + sb.length);
    for (let k = Math.min(sb.length - 1, buf.length); k > held; k--) {
      if (buf.subarray(buf.length - k).equals(sb.subarray(0, k))) held = k;
    }
  }
  return held;
}

/** Bytes of the longest registered secret (0: none). */
export function longestSecretBytes(): number {
  return ordered.reduce((m, s) => Math.max(m, Buffer.byteLength(s)), 0);
}

export interface LogOptions {
  level?: LevelWithSilent;
  /** Write to this file descriptor (default 2, stderr). */
  fd?: number;
  base?: Record<string, unknown>;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? ((process.env[ENV.LOG_LEVEL] as LevelWithSilent | undefined) ?? 'info');
  return pino(
    {
      level,
      base: opts.base ?? {},
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: {
        log: (obj: Record<string, unknown>) => censorDeep(obj) as Record<string, unknown>,
      },
      hooks: {
        streamWrite(s: string) {
          return secrets.size ? redactText(s) : s;
        },
      },
    },
    pino.destination({ fd: opts.fd ?? 2, sync: true }),
  );
}
