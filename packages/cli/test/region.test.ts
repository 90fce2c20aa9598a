/** aws/region.ts with the config loader: the AWS CLI's order, and a clear error when nothing is set. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, UserError } from '@gq/common';
import { awsConfigFile, chooseRegion, findRegion, profileName, resolveRegion } from '../src/aws/region.js';

const dir = mkdtempSync(join(tmpdir(), 'gq-region-'));
const awsConfig = join(dir, 'aws-config');
writeFileSync(
  awsConfig,
  ['[default]', 'region = eu-west-1', '', '[profile research]', 'region = ap-southeast-2', '', '[profile noregion]', 'output = json', ''].join('\n'),
);

/** An environment with no gq config file and the AWS files above (nothing from this machine). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    HOME: dir,
    GQ_CONFIG: join(dir, 'no-such-gq-config.json'),
    AWS_CONFIG_FILE: awsConfig,
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    ...extra,
  };
}

async function regionFor(e: NodeJS.ProcessEnv, flags: Record<string, unknown> = {}): Promise<string> {
  return resolveRegion(loadConfig(flags, e), e);
}

describe('region resolution', () => {
  it('takes AWS_REGION over AWS_DEFAULT_REGION over the profile', async () => {
    expect(await regionFor(env({ AWS_REGION: 'us-west-2', AWS_DEFAULT_REGION: 'us-east-2' }))).toBe('us-west-2');
    expect(await regionFor(env({ AWS_DEFAULT_REGION: 'us-east-2' }))).toBe('us-east-2');
    expect(await regionFor(env())).toBe('eu-west-1');
  });

  it('--region and GQ_REGION come before the AWS variables', async () => {
    expect(await regionFor(env({ AWS_REGION: 'us-west-2', GQ_REGION: 'ca-central-1' }))).toBe('ca-central-1');
    expect(await regionFor(env({ AWS_REGION: 'us-west-2' }), { region: 'sa-east-1' })).toBe('sa-east-1');
  });

  it('the gq config file region comes after the environment, before the profile', async () => {
    const gqConfig = join(dir, 'gq-config.json');
    writeFileSync(gqConfig, JSON.stringify({ region: 'eu-north-1' }));
    expect(await regionFor(env({ GQ_CONFIG: gqConfig }))).toBe('eu-north-1');
    expect(await regionFor(env({ GQ_CONFIG: gqConfig, AWS_DEFAULT_REGION: 'us-east-2' }))).toBe('us-east-2');
  });

  it('reads the selected profile: AWS_PROFILE, or --profile (which wins)', async () => {
    expect(await regionFor(env({ AWS_PROFILE: 'research' }))).toBe('ap-southeast-2');
    expect(await regionFor(env({ AWS_PROFILE: 'noregion' }), { profile: 'research' })).toBe('ap-southeast-2');
    const found = await findRegion(loadConfig({}, env({ AWS_PROFILE: 'research' })), env({ AWS_PROFILE: 'research' }));
    expect(found).toEqual({ region: 'ap-southeast-2', source: 'profile research' });
  });

  it('honours AWS_CONFIG_FILE (and never falls back to ~/.aws/config when it is set)', async () => {
    const other = join(dir, 'other-config');
    writeFileSync(other, '[default]\nregion = me-south-1\n');
    expect(await regionFor(env({ AWS_CONFIG_FILE: other }))).toBe('me-south-1');
    expect(awsConfigFile({ HOME: '/home/x' })).toBe('/home/x/.aws/config');
    expect(awsConfigFile({ HOME: '/home/x', AWS_CONFIG_FILE: other })).toBe(other);
  });

  it('with no region anywhere: a UserError naming every place and what to set', async () => {
    for (const e of [env({ AWS_PROFILE: 'noregion' }), env({ AWS_CONFIG_FILE: join(dir, 'missing') })]) {
      const err = await regionFor(e).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(err).toBeInstanceOf(UserError);
      const u = err as UserError;
      expect(u.message).toBe('No AWS region is set.');
      expect(u.details.join(' ')).toMatch(/AWS_REGION, AWS_DEFAULT_REGION/);
      expect(u.hint).toMatch(/export AWS_REGION=us-east-1/);
    }
    const named = await regionFor(env({ AWS_PROFILE: 'noregion' })).catch((x: UserError) => x);
    expect((named as UserError).hint).toMatch(/aws configure set region us-east-1 --profile noregion/);
    expect((named as UserError).details.join(' ')).toContain(awsConfig);
  });

  it('chooseRegion and profileName are pure', () => {
    expect(chooseRegion('us-east-1', 'default', 'eu-west-1')).toEqual({ region: 'us-east-1', source: 'setting' });
    expect(chooseRegion(undefined, 'p', 'eu-west-1')).toEqual({ region: 'eu-west-1', source: 'profile p' });
    expect(chooseRegion(undefined, 'p', undefined)).toBeUndefined();
    expect(profileName({}, {})).toBe('default');
    expect(profileName({}, { AWS_PROFILE: 'a' })).toBe('a');
    expect(profileName({ profile: 'b' }, { AWS_PROFILE: 'a' })).toBe('b');
  });
});
