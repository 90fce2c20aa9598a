/**
 * Secrets never leave the logger in clear: registered values (the licence text, AWS secrets)
 * wherever they appear, and the values of secret-bearing keys (credentials, authorization, ...)
 * at any depth. Each test logs to a temporary file through a real file descriptor, as gq does
 * with stderr, and reads back exactly what would have been written.
 */
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, redactText, registerSecret, type Logger } from '../src/log.js';

const dir = mkdtempSync(join(tmpdir(), 'gq-log-test-'));
const open: number[] = [];
let n = 0;

/** A logger writing to a fresh temporary file, and a function that returns what it wrote. */
function fileLogger(level: 'debug' | 'info' = 'debug', base?: Record<string, unknown>): { log: Logger; text: () => string; lines: () => any[] } {
  const file = join(dir, `log-${n++}.ndjson`);
  const fd = openSync(file, 'w');
  open.push(fd);
  const log = createLogger({ level, fd, base });
  const text = () => readFileSync(file, 'utf8');
  return { log, text, lines: () => text().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

afterEach(() => {
  for (const fd of open.splice(0)) closeSync(fd);
});

const rand = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

describe('registerSecret: registered values are redacted wherever they appear', () => {
  it('redacts a licence text in messages, fields, nested fields and errors; keeps everything else', () => {
    const key = rand('WLSSECRET');
    const licence = `# Gurobi WLS license file\nWLSACCESSID=${rand('id')}\nWLSSECRET=${key}\nLICENSEID=2512345\n`;
    registerSecret(licence);
    const { log, text, lines } = fileLogger();
    log.info(`read the licence: ${licence}`);
    log.info({ job: 'sweep-1', file: { body: licence, lines: licence.split('\n') } }, 'nested');
    log.warn({ err: new Error(`could not use ${key}`) }, 'an error that quotes the secret');
    log.debug({ deep: { a: { b: { c: { d: `prefix ${key} suffix` } } } } }, 'deep');
    const out = text();
    expect(out).not.toContain(key);
    for (const line of licence.split('\n').filter((l) => l.length >= 6)) expect(out).not.toContain(line);
    expect(out).toContain('[REDACTED]');
    // Everything that is not secret is still there.
    const got = lines();
    expect(got).toHaveLength(4);
    expect(got[1].job).toBe('sweep-1');
    expect(got[1].msg).toBe('nested');
    expect(got[2].err.type).toBe('Error');
    expect(got[3].deep.a.b.c.d).toBe('prefix [REDACTED] suffix');
  });

  it('redacts a secret that JSON has to escape (quotes, backslashes, tabs)', () => {
    const secret = `pa"ss\\word\t${rand('x')}`;
    registerSecret(secret);
    const { log, text } = fileLogger();
    log.info({ value: secret }, 'escaped');
    log.info(`in the message: ${secret}`);
    const out = text();
    expect(out).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(out).not.toContain(secret.slice(-20));
    expect(out.match(/\[REDACTED\]/g)).toHaveLength(2);
  });

  it('replaces a secret that contains another registered one whole', () => {
    const inner = rand('inner');
    const outer = `${rand('outer')}${inner}${rand('tail')}`;
    registerSecret(inner);
    registerSecret(outer);
    expect(redactText(`x ${outer} y ${inner} z`)).toBe('x [REDACTED] y [REDACTED] z');
  });

  it('ignores empty and very short values (they would blank out ordinary words)', () => {
    registerSecret(undefined);
    registerSecret('');
    registerSecret('abc');
    expect(redactText('abc is fine')).toBe('abc is fine');
  });

  it('redacts an AWS secret access key registered from the environment in an SDK-style error', () => {
    const secret = randomBytes(30).toString('base64').slice(0, 40);
    registerSecret(secret);
    const { log, text } = fileLogger();
    const err = Object.assign(new Error(`The request signature we calculated does not match (key ${secret})`), { name: 'SignatureDoesNotMatch' });
    log.error({ err }, 'aws call failed');
    expect(text()).not.toContain(secret);
    expect(text()).toContain('SignatureDoesNotMatch');
  });
});

describe('secret-bearing keys are censored at any depth, whatever their value', () => {
  const creds = () => ({ accessKeyId: rand('AKIA'), secretAccessKey: rand('secret'), sessionToken: rand('token') });

  it('censors credentials at the top, nested one level, and deep down', () => {
    const a = creds();
    const b = creds();
    const c = creds();
    const { log, text, lines } = fileLogger();
    log.info({ credentials: a }, 'top');
    log.info({ client: { credentials: b } }, 'one level');
    log.info({ config: { aws: { clients: [{ region: 'us-east-1', credentials: c }] } } }, 'deep');
    log.info({ aws: { secretAccessKey: a.secretAccessKey, sessionToken: a.sessionToken, region: 'eu-west-1' } }, 'bare keys');
    const out = text();
    for (const x of [a, b, c]) {
      expect(out).not.toContain(x.secretAccessKey);
      expect(out).not.toContain(x.sessionToken);
    }
    const got = lines();
    expect(got[0].credentials).toBe('[REDACTED]');
    expect(got[1].client.credentials).toBe('[REDACTED]');
    expect(got[2].config.aws.clients[0]).toEqual({ region: 'us-east-1', credentials: '[REDACTED]' });
    expect(got[3].aws).toEqual({ secretAccessKey: '[REDACTED]', sessionToken: '[REDACTED]', region: 'eu-west-1' });
  });

  it('censors nested credentials.secretAccessKey under any parent name', () => {
    const x = creds();
    const { log, lines, text } = fileLogger();
    log.info({ sts: { response: { credentials: { secretAccessKey: x.secretAccessKey } } } });
    log.info({ nested: { deeper: { secretAccessKey: x.secretAccessKey, SecretAccessKey: x.secretAccessKey, AWS_SECRET_ACCESS_KEY: x.secretAccessKey } } });
    expect(text()).not.toContain(x.secretAccessKey);
    expect(lines()[1].nested.deeper).toEqual({ secretAccessKey: '[REDACTED]', SecretAccessKey: '[REDACTED]', AWS_SECRET_ACCESS_KEY: '[REDACTED]' });
  });

  it('censors authorization and security-token headers, in either case, and keeps the other headers', () => {
    const sig = `AWS4-HMAC-SHA256 Credential=${rand('AKIA')}/20260101/us-east-1/s3/aws4_request, Signature=${rand('sig')}`;
    const token = rand('tok');
    const { log, lines, text } = fileLogger();
    log.debug({ headers: { authorization: sig, 'x-amz-security-token': token, 'content-type': 'text/plain' } }, 'request');
    log.debug({ request: { headers: { Authorization: sig, 'X-Amz-Security-Token': token, host: 's3.amazonaws.com' } } }, 'request 2');
    log.debug({ http: { request: { headers: { authorization: sig, 'proxy-authorization': sig, cookie: token } } } }, 'request 3');
    expect(text()).not.toContain(sig);
    expect(text()).not.toContain(token);
    const got = lines();
    expect(got[0].headers).toEqual({ authorization: '[REDACTED]', 'x-amz-security-token': '[REDACTED]', 'content-type': 'text/plain' });
    expect(got[1].request.headers).toEqual({ Authorization: '[REDACTED]', 'X-Amz-Security-Token': '[REDACTED]', host: 's3.amazonaws.com' });
    expect(got[2].http.request.headers).toEqual({ authorization: '[REDACTED]', 'proxy-authorization': '[REDACTED]', cookie: '[REDACTED]' });
  });

  it('censors licence and password fields, and survives cycles', () => {
    const lic = rand('lic');
    const cyclic: Record<string, unknown> = { name: 'loop', license: lic };
    cyclic.self = cyclic;
    const { log, text } = fileLogger();
    log.info({ job: { licence: lic, password: lic, spec: { licenseKey: 'jobs/x/secret/license' } } }, 'fields');
    log.info({ cyclic }, 'cycle');
    const out = text();
    expect(out).not.toContain(lic);
    // The licence's artifact key is not the licence: it stays visible (it helps debugging).
    expect(out).toContain('jobs/x/secret/license');
    expect(out).toContain('"name":"loop"');
  });

  it('censors secrets in child-logger bindings and in the base', () => {
    const x = creds();
    const { log, text } = fileLogger('info', { credentials: x });
    log.child({ aws: { credentials: x } }).info('from a child');
    expect(text()).not.toContain(x.secretAccessKey);
    expect(text()).toContain('from a child');
  });

  it('writes nothing below its level (no debug detail unless --verbose)', () => {
    const { log, text } = fileLogger('info');
    log.debug({ credentials: creds() }, 'hidden');
    log.info('shown');
    expect(text()).not.toContain('hidden');
    expect(text()).toContain('shown');
  });
});
