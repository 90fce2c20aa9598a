/**
 * Stand-in instance types for Spot (`--spot-alternatives`, config `spotAlternatives`): the setting
 * from flag, environment and file, refused when malformed; each stand-in checked against EC2's
 * DescribeInstanceTypes (moto) for architecture, vCPUs and memory before anything is written.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, UserError } from '@gq/common';
import type { AwsClients } from '@gq/common/aws/clients';
import { checkStandIns, describeTypes, standInProblem } from '../src/aws/instance-types.js';
import { describeAws, motoClients, startMoto, type Moto } from '../../../test/support/moto.js';

function env(extra: Record<string, string> = {}, file?: object): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'gq-standin-'));
  const config = join(dir, 'config.json');
  if (file) writeFileSync(config, JSON.stringify(file));
  return { GQ_CONFIG: config, ...extra };
}

function refused(flags: Record<string, unknown>, e: NodeJS.ProcessEnv): UserError {
  try {
    loadConfig(flags, e);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('accepted');
}

describe('spotAlternatives setting', () => {
  it('none by default; TYPE=ALT,ALT;TYPE=ALT from the flag, JSON from the environment or the file', () => {
    expect(loadConfig({}, env()).spotAlternatives).toEqual({});
    expect(loadConfig({ spotAlternatives: 'c5.xlarge = c5a.xlarge, c6i.xlarge; m5.large=m5a.large' }, env()).spotAlternatives).toEqual({
      'c5.xlarge': ['c5a.xlarge', 'c6i.xlarge'],
      'm5.large': ['m5a.large'],
    });
    expect(loadConfig({}, env({ GQ_SPOT_ALTERNATIVES: '{"t3.micro": ["t3a.micro"]}' })).spotAlternatives).toEqual({ 't3.micro': ['t3a.micro'] });
    expect(loadConfig({}, env({}, { spotAlternatives: { 't3.micro': ['t3.small'] } })).spotAlternatives).toEqual({ 't3.micro': ['t3.small'] });
  });

  it('refuses what is not a list of instance types per type, naming the setting', () => {
    for (const [flags, e] of [
      [{ spotAlternatives: 'c5.xlarge' }, env()],
      [{ spotAlternatives: 'c5.xlarge=c5a xlarge' }, env()],
      [{}, env({ GQ_SPOT_ALTERNATIVES: '{"t3.micro": "t3a.micro"}' })],
      [{ spotAlternatives: `t3.micro=${Array.from({ length: 40 }, (_, i) => `c${i}.large`).join(',')}` }, env()],
    ] as const) {
      expect(refused(flags, e).message).toMatch(/spotAlternatives|GQ_SPOT_ALTERNATIVES|spot-alternatives/);
    }
  });

  it('a stand-in needs an architecture in common and at least the vCPUs and memory', () => {
    const base = { instanceType: 'c5.xlarge', architectures: ['x86_64'], vcpus: 4, memoryMiB: 8192 };
    expect(standInProblem(base, { instanceType: 'c6i.xlarge', architectures: ['x86_64'], vcpus: 4, memoryMiB: 8192 })).toBeUndefined();
    expect(standInProblem(base, { instanceType: 'c6g.xlarge', architectures: ['arm64'], vcpus: 4, memoryMiB: 8192 })).toMatch(/image/);
    expect(standInProblem(base, { instanceType: 'c5.large', architectures: ['x86_64'], vcpus: 2, memoryMiB: 4096 })).toMatch(/vCPUs/);
    expect(standInProblem(base, { instanceType: 'c5a.xlarge', architectures: ['x86_64'], vcpus: 4, memoryMiB: 4096 })).toMatch(/memory/);
  });
});

describeAws('spotAlternatives checked against DescribeInstanceTypes (moto)', () => {
  let moto: Moto;
  let clients: AwsClients;
  beforeAll(async () => {
    moto = (await startMoto())!;
    clients = motoClients(moto.endpoint);
  });
  afterAll(async () => {
    clients?.destroy();
    await moto?.stop();
  });

  it('passes larger types of the same architecture; names each one that is unknown, smaller or of another architecture', async () => {
    const { known } = await describeTypes(clients.ec2, ['t3.micro']);
    expect(known[0]).toMatchObject({ vcpus: 2, memoryMiB: 1024 });
    await checkStandIns({ spotAlternatives: { 't3.micro': ['t3a.micro', 't3.small'] } }, clients.ec2, known);
    let err: UserError | undefined;
    try {
      await checkStandIns({ spotAlternatives: { 't3.micro': ['t3.nano', 't4g.micro', 'nope.large', 't3.small'] } }, clients.ec2, known);
    } catch (e) {
      err = e as UserError;
    }
    expect(err).toBeInstanceOf(UserError);
    const all = [err!.message, ...(err!.details ?? [])].join('\n');
    expect(all).toMatch(/nope\.large/);
    expect(all).toMatch(/t3\.nano has .* memory/);
    expect(all).toMatch(/t4g\.micro .*arm64/);
    expect(all).not.toMatch(/t3\.small/);
  });
});
