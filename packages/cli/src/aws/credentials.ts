/**
 * Why AWS credentials could not be had, in words the user can act on. The SDK's default chain
 * ends every failure with "Could not load credentials from any providers", whatever the cause;
 * the cause (a profile that does not exist, a credential_process or SSO session that returned
 * expired credentials) is only told to the chain's logger. So on that error gq resolves the
 * credentials once more with a logger that keeps those reasons, and names the one that matters.
 * Nothing here ever prints a credential: only profile names, file names and the SDK's reasons.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@gq/common';
import { credentialProblem } from './stack-errors.js';

const FIX = 'Run `aws configure` (access keys) or `aws sso login` (SSO profile), or set AWS_PROFILE to a profile that works.';

function errName(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown };
  return String(e?.name ?? e?.Code ?? '');
}

/** The SDK's "no credentials from any provider" (as opposed to AWS refusing credentials it got). */
export function isNoCredentials(err: unknown): boolean {
  return errName(err) === 'CredentialsProviderError' || /could not load credentials/i.test(String((err as Error)?.message ?? ''));
}

function sharedFiles(env: NodeJS.ProcessEnv): { config: string; credentials: string } {
  const home = env.HOME || homedir();
  return {
    config: env.AWS_CONFIG_FILE || join(home, '.aws', 'config'),
    credentials: env.AWS_SHARED_CREDENTIALS_FILE || join(home, '.aws', 'credentials'),
  };
}

/** Profile names in an AWS config ([default], [profile x]) or credentials ([x]) file. */
export function profilesIn(text: string, kind: 'config' | 'credentials'): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*\[\s*([^\]]+?)\s*\]/.exec(line);
    if (!m) continue;
    const section = m[1]!;
    if (kind === 'credentials') out.push(section);
    else if (section === 'default') out.push('default');
    else {
      const p = /^profile\s+(.+)$/.exec(section);
      if (p) out.push(p[1]!.trim());
    }
  }
  return out;
}

/** Whether `profile` is defined in the shared config or credentials file. */
export function profileExists(profile: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const files = sharedFiles(env);
  for (const [kind, file] of [['config', files.config], ['credentials', files.credentials]] as const) {
    try {
      if (existsSync(file) && profilesIn(readFileSync(file, 'utf8'), kind).includes(profile)) return true;
    } catch {
      // unreadable: the SDK cannot use it either
    }
  }
  return false;
}

/** The credential chain's own reasons, by resolving the credentials again with a recording logger. */
async function chainReasons(region: string, profile: string | undefined): Promise<string[]> {
  const reasons: string[] = [];
  const record = (...a: unknown[]) => {
    const m = a.map(String).join(' ');
    const r = /@smithy\/property-provider (?:->|\(!\)) (.*)$/s.exec(m);
    if (r) reasons.push(r[1]!.trim());
  };
  const logger = { trace: () => {}, debug: record, info: () => {}, warn: () => {}, error: () => {} };
  const { STSClient } = await import('@aws-sdk/client-sts');
  const sts = new STSClient({ region, logger, ...(profile ? { profile } : {}) });
  try {
    await sts.config.credentials();
  } catch {
    // expected: we are here because it failed
  } finally {
    sts.destroy();
  }
  return reasons;
}

/**
 * `err` as a UserError when it is a credentials problem (a UserError wrapping one included),
 * else `err` unchanged.
 */
export async function explainAwsError(err: unknown, opts: { region?: string; profile?: string; env?: NodeJS.ProcessEnv } = {}): Promise<unknown> {
  const env = opts.env ?? process.env;
  const cause = err instanceof UserError ? (err as { cause?: unknown }).cause : err;
  if (cause === undefined || cause === null) return err;
  const problem = credentialProblem(cause);
  if (!problem) return err;
  const profile = opts.profile ?? env.AWS_PROFILE;
  if (isNoCredentials(cause)) {
    if (profile && !profileExists(profile, env)) {
      const files = sharedFiles(env);
      return new UserError(`The AWS profile "${profile}" does not exist.`, {
        hint:
          `It is in neither ${files.config} nor ${files.credentials}. Create it (\`aws configure --profile ${profile}\` ` +
          `or \`aws configure sso --profile ${profile}\`), or set AWS_PROFILE to one that \`aws configure list-profiles\` lists.`,
        cause,
      });
    }
    const reasons = await chainReasons(opts.region ?? env.AWS_REGION ?? 'us-east-1', profile).catch(() => [] as string[]);
    const expired = reasons.find((r) => /expired/i.test(r));
    const who = profile ? ` of the AWS profile "${profile}"` : '';
    if (expired) {
      return new UserError(`The AWS credentials${who} have expired (${expired.replace(/\.$/, '')}).`, {
        hint: `Renew them: \`aws sso login${profile ? ` --profile ${profile}` : ''}\` for an SSO profile, or whatever the profile's credential_process uses; then run the command again.`,
        cause,
      });
    }
    const sso = reasons.find((r) => /sso/i.test(r) && /token|session|login/i.test(r));
    if (sso) {
      return new UserError(`The AWS SSO session${who} has expired or is missing (${sso.replace(/\.$/, '')}).`, {
        hint: `Run \`aws sso login${profile ? ` --profile ${profile}` : ''}\`, then run the command again.`,
        cause,
      });
    }
    if (profile) {
      const specific = reasons.find((r) => r.includes(profile) && !/could not be found/i.test(r));
      return new UserError(`Could not get AWS credentials from the profile "${profile}"${specific ? ` (${specific.replace(/\.$/, '')})` : ''}.`, {
        hint: `Check the profile with \`aws sts get-caller-identity --profile ${profile}\`. ${FIX}`,
        cause,
      });
    }
    return new UserError('No AWS credentials found.', { hint: FIX, cause });
  }
  // AWS refused the credentials it got (expired session token, unknown key, bad signature).
  const [first, ...rest] = problem.split(/(?<=[.)]) (?=[A-Z`])/);
  return new UserError(first!, { hint: rest.join(' ') || FIX, cause });
}
