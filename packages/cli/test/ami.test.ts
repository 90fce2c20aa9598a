/**
 * aws/ami.ts: the settings, the requests they make (pure), resolution against stub clients, and
 * against moto (which ships AWS's public Amazon Linux parameters and their images).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateImageCommand, DescribeImagesCommand, RunInstancesCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { UserError } from '@gq/common';
import {
  al2023Parameter,
  amiSettingFor,
  architectureFor,
  architectureProblem,
  DEFAULT_AMI,
  describeImagesRequest,
  parseAmiSetting,
  resolveAmi,
  ubuntuParameter,
} from '../src/aws/ami.js';
import { describeAws, motoClients, startMoto, type Moto } from '../../../test/support/moto.js';

const X86 = { instanceType: 'm5.large', architectures: ['x86_64'] };
const ARM = { instanceType: 'c7g.large', architectures: ['arm64'] };

/** A stand-in client that records each command and answers from `answer`. */
function stub(answer: (name: string, input: any) => unknown) {
  const calls: Array<{ name: string; input: any }> = [];
  return {
    calls,
    client: {
      send: async (cmd: { constructor: { name: string }; input: unknown }) => {
        calls.push({ name: cmd.constructor.name, input: cmd.input });
        const a = answer(cmd.constructor.name, cmd.input);
        if (a instanceof Error) throw a;
        return a;
      },
    },
  };
}

const image = (over: Partial<Image>): Image => ({ ImageId: 'ami-0123456789abcdef0', Architecture: 'x86_64', CreationDate: '2026-01-01T00:00:00.000Z', ...over });

describe('ami settings (pure)', () => {
  it('picks the setting of the type, then its family, then "*", then al2023', () => {
    const s = { 'c5.4xlarge': 'ubuntu-24.04', c5: 'ubuntu-22.04', '*': 'gurobi' };
    expect(amiSettingFor(s, 'c5.4xlarge')).toBe('ubuntu-24.04');
    expect(amiSettingFor(s, 'c5.large')).toBe('ubuntu-22.04');
    expect(amiSettingFor(s, 'm5.large')).toBe('gurobi');
    expect(amiSettingFor({}, 'm5.large')).toBe(DEFAULT_AMI);
    expect(DEFAULT_AMI).toBe('al2023');
  });

  it('names the documented public SSM parameters', () => {
    expect(al2023Parameter('x86_64')).toBe('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
    expect(al2023Parameter('arm64')).toBe('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64');
    expect(ubuntuParameter('24.04', 'x86_64')).toBe('/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id');
    expect(ubuntuParameter('24.04', 'arm64')).toBe('/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id');
    expect(ubuntuParameter('22.04', 'x86_64')).toBe('/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id');
  });

  it('parses every form, and refuses bad ones with a UserError', () => {
    expect(parseAmiSetting('ami-0123456789abcdef0')).toEqual({ kind: 'id', imageId: 'ami-0123456789abcdef0' });
    expect(parseAmiSetting('ami-12c6146b')).toEqual({ kind: 'id', imageId: 'ami-12c6146b' });
    expect(parseAmiSetting('gurobi')).toEqual({ kind: 'gurobi' });
    expect(parseAmiSetting('self/my-image-*')).toEqual({ kind: 'pattern', owner: 'self', pattern: 'my-image-*' });
    expect(parseAmiSetting('123456789012/x-*')).toEqual({ kind: 'pattern', owner: '123456789012', pattern: 'x-*' });
    expect(parseAmiSetting('my-image-*')).toEqual({ kind: 'pattern', owner: 'amazon', pattern: 'my-image-*' });
    const ssm = parseAmiSetting('ssm:/golden/ami');
    expect(ssm.kind === 'ssm' && ssm.parameter('x86_64')).toBe('/golden/ami');
    const u = parseAmiSetting('ubuntu-24.04');
    expect(u.kind === 'ssm' && u.parameter('arm64')).toBe(ubuntuParameter('24.04', 'arm64'));
    for (const bad of ['ubuntu-18.04', 'ami-xyz', 'ssm:golden', '']) expect(() => parseAmiSetting(bad)).toThrow(UserError);
  });

  it('never asks for images owned by self unless the setting names the owner', () => {
    const bare = describeImagesRequest({ kind: 'pattern', owner: 'amazon', pattern: 'al2023-ami-*' }, 'x86_64');
    expect(bare.Owners).toEqual(['amazon']);
    const mine = describeImagesRequest({ kind: 'pattern', owner: 'self', pattern: 'mine-*' }, 'arm64');
    expect(mine.Owners).toEqual(['self']);
    expect(mine.Filters).toContainEqual({ Name: 'architecture', Values: ['arm64'] });
  });

  it('looks the Gurobi image up by product code, owner aws-marketplace only', () => {
    const r = describeImagesRequest({ kind: 'gurobi' }, 'x86_64', { gurobiProductCode: 'abc123def456ghi789' });
    expect(r.Owners).toEqual(['aws-marketplace']);
    expect(r.Filters).toEqual([
      { Name: 'product-code', Values: ['abc123def456ghi789'] },
      { Name: 'architecture', Values: ['x86_64'] },
      { Name: 'state', Values: ['available'] },
    ]);
    // No product code configured (none is shipped): a UserError that says how to find it.
    let err: unknown;
    try {
      describeImagesRequest({ kind: 'gurobi' }, 'x86_64');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).hint).toMatch(/"gurobiProductCode"/);
  });

  it('checks the image architecture against the type', () => {
    expect(architectureFor(['i386', 'x86_64'])).toBe('x86_64');
    expect(architectureFor(['arm64'])).toBe('arm64');
    expect(architectureProblem({ imageId: 'ami-1', architecture: 'x86_64' }, X86)).toBeUndefined();
    expect(architectureProblem({ imageId: 'ami-1', architecture: 'arm64' }, X86)).toBe('AMI ami-1 is built for arm64, but m5.large runs x86_64');
  });
});

describe('resolveAmi (stub clients)', () => {
  it('ubuntu-24.04 reads Canonical\'s parameter for the type\'s CPU, then checks the image', async () => {
    const ssm = stub(() => ({ Parameter: { Value: 'ami-0aaaaaaaaaaaaaaaa' } }));
    const ec2 = stub(() => ({ Images: [image({ ImageId: 'ami-0aaaaaaaaaaaaaaaa', Architecture: 'arm64', Name: 'ubuntu-noble' })] }));
    const r = await resolveAmi({ ec2: ec2.client as unknown as EC2Client, ssm: ssm.client as unknown as SSMClient }, 'ubuntu-24.04', ARM);
    expect(ssm.calls).toEqual([{ name: 'GetParameterCommand', input: { Name: ubuntuParameter('24.04', 'arm64') } }]);
    expect(ec2.calls).toEqual([{ name: 'DescribeImagesCommand', input: { ImageIds: ['ami-0aaaaaaaaaaaaaaaa'] } }]);
    expect(r).toMatchObject({ imageId: 'ami-0aaaaaaaaaaaaaaaa', architecture: 'arm64', via: `SSM ${ubuntuParameter('24.04', 'arm64')}` });
  });

  it('gurobi: the newest marketplace image with the product code', async () => {
    const ec2 = stub(() => ({
      Images: [image({ ImageId: 'ami-0000000000000000a', CreationDate: '2025-01-01T00:00:00Z' }), image({ ImageId: 'ami-0000000000000000b', CreationDate: '2026-03-01T00:00:00Z' })],
    }));
    const r = await resolveAmi({ ec2: ec2.client as unknown as EC2Client }, 'gurobi', X86, { gurobiProductCode: 'abc123def456ghi789' });
    expect(r.imageId).toBe('ami-0000000000000000b');
    expect(ec2.calls[0]!.input.Owners).toEqual(['aws-marketplace']);
  });

  it('gurobi with nothing found: subscribe first', async () => {
    const ec2 = stub(() => ({ Images: [] }));
    await expect(resolveAmi({ ec2: ec2.client as unknown as EC2Client }, 'gurobi', X86, { gurobiProductCode: 'abc123def456ghi789' })).rejects.toMatchObject({
      name: 'UserError',
      hint: expect.stringMatching(/Subscribe to the Gurobi image/),
    });
  });

  it('a missing SSM parameter is a UserError, not a crash', async () => {
    const ssm = stub(() => Object.assign(new Error('not found'), { name: 'ParameterNotFound' }));
    const ec2 = stub(() => ({ Images: [] }));
    await expect(
      resolveAmi({ ec2: ec2.client as unknown as EC2Client, ssm: ssm.client as unknown as SSMClient }, 'al2023', X86),
    ).rejects.toThrow(/does not exist in this region/);
    expect(ec2.calls).toEqual([]);
  });

  it('an AMI id of the wrong architecture is refused before any launch', async () => {
    const ec2 = stub(() => ({ Images: [image({ ImageId: 'ami-0bbbbbbbbbbbbbbbb', Architecture: 'arm64' })] }));
    await expect(resolveAmi({ ec2: ec2.client as unknown as EC2Client }, 'ami-0bbbbbbbbbbbbbbbb', X86)).rejects.toMatchObject({
      name: 'UserError',
      message: 'AMI ami-0bbbbbbbbbbbbbbbb is built for arm64, but m5.large runs x86_64.',
    });
  });
});


describeAws('resolveAmi (moto)', () => {
  let moto: Moto;
  let ec2: EC2Client;
  let ssm: SSMClient;
  let mine: string;
  beforeAll(async () => {
    moto = (await startMoto())!;
    const c = motoClients(moto.endpoint);
    ec2 = c.ec2;
    ssm = new SSMClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    // An image of this account ("self") whose name also matches a broad pattern.
    const base = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }))).Images![0]!;
    const inst = await ec2.send(new RunInstancesCommand({ ImageId: base.ImageId!, MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' }));
    mine = (await ec2.send(new CreateImageCommand({ InstanceId: inst.Instances![0]!.InstanceId!, Name: 'al2023-ami-2099-mine-x86_64' }))).ImageId!;
  });
  afterAll(async () => {
    ssm?.destroy();
    ec2?.destroy();
    await moto?.stop();
  });

  it('the default (al2023) resolves from AWS\'s public parameter, per architecture', async () => {
    const x = await resolveAmi({ ec2, ssm }, DEFAULT_AMI, X86);
    const a = await resolveAmi({ ec2, ssm }, DEFAULT_AMI, ARM);
    expect(x).toMatchObject({ architecture: 'x86_64', via: `SSM ${al2023Parameter('x86_64')}` });
    expect(x.name).toMatch(/^al2023-ami-.*-x86_64$/);
    expect(a).toMatchObject({ architecture: 'arm64', via: `SSM ${al2023Parameter('arm64')}` });
    expect(a.imageId).not.toBe(x.imageId);
  });

  it('ubuntu-24.04: moto has no Canonical parameters (and refuses to create /aws/ ones): a clear UserError', async () => {
    await expect(ssm.send(new PutParameterCommand({ Name: ubuntuParameter('24.04', 'x86_64'), Value: mine, Type: 'String' }))).rejects.toThrow();
    await expect(resolveAmi({ ec2, ssm }, 'ubuntu-24.04', X86)).rejects.toMatchObject({
      name: 'UserError',
      message: expect.stringContaining(ubuntuParameter('24.04', 'x86_64')),
    });
  });

  it('ssm:/NAME reads the user\'s own parameter', async () => {
    await ssm.send(new PutParameterCommand({ Name: '/gq-test/golden-ami', Value: mine, Type: 'String' }));
    expect((await resolveAmi({ ec2, ssm }, 'ssm:/gq-test/golden-ami', X86)).imageId).toBe(mine);
  });

  it('a bare pattern never picks an image owned by self; self/PATTERN does', async () => {
    const bare = await resolveAmi({ ec2, ssm }, 'al2023-ami-2099-mine-*', X86).catch((e: unknown) => e);
    expect(bare).toBeInstanceOf(UserError);
    expect((bare as UserError).hint).toMatch(/self\/PATTERN/);
    expect((await resolveAmi({ ec2, ssm }, 'self/al2023-ami-2099-mine-*', X86)).imageId).toBe(mine);
    // The broad Amazon pattern finds Amazon's image, not the newer one of this account.
    const broad = await resolveAmi({ ec2, ssm }, 'al2023-ami-*', X86);
    expect(broad.imageId).not.toBe(mine);
  });

  it('an AMI id is used as named, and its architecture checked', async () => {
    const arm = await resolveAmi({ ec2, ssm }, DEFAULT_AMI, ARM);
    expect((await resolveAmi({ ec2, ssm }, mine, X86)).imageId).toBe(mine);
    await expect(resolveAmi({ ec2, ssm }, arm.imageId, X86)).rejects.toThrow(/is built for arm64, but m5.large runs x86_64/);
    await expect(resolveAmi({ ec2, ssm }, 'ami-0ffffffffffffffff', X86)).rejects.toThrow(/does not exist in this region/);
  });
});
