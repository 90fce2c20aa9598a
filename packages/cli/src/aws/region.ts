/**
 * The one place that decides gq's AWS region, in the AWS CLI's order
 * (https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html: AWS_REGION
 * "overrides the values in the environment variable AWS_DEFAULT_REGION and the profile setting
 * region"; https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-files.html: the
 * `region` of the selected profile in ~/.aws/config, or the file AWS_CONFIG_FILE names):
 *
 *   1. --region, GQ_REGION, AWS_REGION, AWS_DEFAULT_REGION, the gq config file's "region"
 *      (all already merged into `config.region` by the config loader, flags first);
 *   2. the `region` of the selected profile (--profile, GQ_PROFILE, AWS_PROFILE, else `default`)
 *      in the AWS config file (AWS_CONFIG_FILE, else ~/.aws/config).
 *
 * Nothing else: never the instance metadata service (gq runs on a laptop) and never a built-in
 * default, so a job cannot land in a region the user did not choose. None set: a UserError that
 * says what to set.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadSharedConfigFiles } from '@smithy/shared-ini-file-loader';
import { UserError, type Config } from '@gq/common';

export interface RegionChoice {
  region: string;
  /** Where it came from, for `gq doctor`. */
  source: string;
}

/** The profile the AWS SDK and CLI would use. */
export function profileName(config: Pick<Config, 'profile'>, env: NodeJS.ProcessEnv = process.env): string {
  return config.profile || env.AWS_PROFILE || 'default';
}

/** The AWS config file the AWS SDK and CLI would read. */
export function awsConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.AWS_CONFIG_FILE || join(env.HOME || homedir(), '.aws', 'config');
}

/**
 * Pure: the region from what is known, or undefined. `configured` is `config.region`
 * (flags → env → gq config file); `profileRegion` the selected profile's `region`.
 */
export function chooseRegion(configured: string | undefined, profile: string, profileRegion: string | undefined): RegionChoice | undefined {
  if (configured) return { region: configured, source: 'setting' };
  if (profileRegion) return { region: profileRegion, source: `profile ${profile}` };
  return undefined;
}

/** The error for "no region anywhere", naming what to set. */
export function noRegionError(profile: string, file: string): UserError {
  return new UserError('No AWS region is set.', {
    details: [
      'gq looked at --region, GQ_REGION, AWS_REGION, AWS_DEFAULT_REGION, "region" in the gq config file,',
      `and "region" of the AWS profile "${profile}" in ${file}.`,
    ],
    hint: `Set one, e.g. \`export AWS_REGION=us-east-1\`, or \`aws configure set region us-east-1${profile === 'default' ? '' : ` --profile ${profile}`}\`.`,
  });
}

/** The selected profile's `region` in the AWS config file; undefined when the file or key is missing. */
export async function profileRegion(profile: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  try {
    const files = await loadSharedConfigFiles({
      configFilepath: awsConfigFile(env),
      filepath: env.AWS_SHARED_CREDENTIALS_FILE || join(env.HOME || homedir(), '.aws', 'credentials'),
      ignoreCache: true,
    });
    const r = files.configFile?.[profile]?.region;
    return typeof r === 'string' && r.trim() ? r.trim() : undefined;
  } catch {
    // An unreadable file holds no region for gq; the SDK reports it when it needs credentials.
    return undefined;
  }
}

/** The region, and where it came from; undefined when none is set anywhere. */
export async function findRegion(config: Pick<Config, 'region' | 'profile'>, env: NodeJS.ProcessEnv = process.env): Promise<RegionChoice | undefined> {
  const profile = profileName(config, env);
  if (config.region) return chooseRegion(config.region, profile, undefined);
  return chooseRegion(undefined, profile, await profileRegion(profile, env));
}

/** The region, or a UserError that says what to set. */
export async function resolveRegion(config: Pick<Config, 'region' | 'profile'>, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const found = await findRegion(config, env);
  if (!found) throw noRegionError(profileName(config, env), awsConfigFile(env));
  return found.region;
}
