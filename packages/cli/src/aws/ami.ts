/**
 * The AMI for an instance type: the `ami` setting for that type, else for its family ("c5"),
 * else for "*", else Amazon Linux 2023. A setting is one of
 *
 *   al2023 (default)        Amazon Linux 2023, from AWS's public SSM parameter
 *                           /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-<arch>
 *                           (public parameters: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-systems-manager-parameter-to-find-AMI.html;
 *                           AWS publishes -x86_64 and -arm64, and moto ships a snapshot of both)
 *   ubuntu-22.04            Canonical's public SSM parameters
 *   ubuntu-24.04            /aws/service/canonical/ubuntu/server/<release>/stable/current/<amd64|arm64>/hvm/<volume>/ami-id
 *                           (Canonical, "Finding Ubuntu images with the AWS SSM Parameter Store",
 *                           https://discourse.ubuntu.com/t/finding-ubuntu-images-with-the-aws-ssm-parameter-store/15507:
 *                           .../ubuntu/PRODUCT/RELEASE/stable/current/ARCH/VIRT_TYPE/VOL_TYPE/ami-id; Canonical
 *                           publishes 24.04 under ebs-gp3 and 22.04 under ebs-gp2)
 *   ssm:/NAME               any SSM parameter that holds an AMI id (e.g. your own golden image)
 *   gurobi                  the newest image of the Gurobi Marketplace product: DescribeImages with
 *                           Owners ["aws-marketplace"] and the filter product-code = the
 *                           `gurobiProductCode` setting (DescribeImages filters:
 *                           https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html)
 *   ami-0123456789abcdef0   exactly that image, whoever owns it (the user named it)
 *   OWNER/PATTERN           the newest image named PATTERN owned by OWNER: amazon, aws-marketplace,
 *                           self, or a 12-digit account id
 *   PATTERN                 the newest image named PATTERN owned by amazon
 *
 * Never an image owned by `self` (or any account) unless the user named it: a bare name pattern
 * searches Amazon's own images only, so an image someone in the account registered with a
 * matching name can never be picked by accident.
 *
 * Every resolved image is checked against the instance type's architectures (ProcessorInfo.
 * SupportedArchitectures vs the image's Architecture): a mismatch is a UserError before any
 * instance is launched.
 */
import { DescribeImagesCommand, type DescribeImagesCommandInput, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { UserError } from '@gq/common';

export const DEFAULT_AMI = 'al2023';

/**
 * The default Marketplace product code of the Gurobi image (`gurobiProductCode` setting).
 * Not shipped: gq could not verify the code of Gurobi's listing, and a wrong code would pick
 * someone else's product. Set it from your subscription (see the README, "AMIs").
 */
export const DEFAULT_GUROBI_PRODUCT_CODE: string | undefined = undefined;

export const UBUNTU_RELEASES = ['22.04', '24.04'] as const;

export type AmiSource =
  | { kind: 'id'; imageId: string }
  | { kind: 'ssm'; parameter: (arch: string) => string; label: string }
  | { kind: 'gurobi' }
  | { kind: 'pattern'; owner: string; pattern: string };

export interface AmiOptions {
  /** Marketplace product code of the Gurobi image. */
  gurobiProductCode?: string;
}

export interface ResolvedAmi {
  imageId: string;
  rootDeviceName?: string;
  /** GB of the root device's snapshot (the image's block device mapping), when it says. */
  rootVolumeGb?: number;
  name?: string;
  architecture?: string;
  ownerId?: string;
  /** How it was found, for `gq doctor` (e.g. the SSM parameter). */
  via: string;
}

/** The instance type's side of the check: its name and ProcessorInfo.SupportedArchitectures. */
export interface TypeArchitectures {
  instanceType: string;
  architectures: readonly string[];
}

const AMI_ID = /^ami-[0-9a-f]{8}([0-9a-f]{9})?$/;
const OWNER = /^(amazon|aws-marketplace|self|\d{12})$/;
const SSM_NAME = /^\/[A-Za-z0-9_.\-/]{1,2047}$/;

export function amiSettingFor(ami: Record<string, string>, instanceType: string): string {
  return ami[instanceType] ?? ami[instanceType.split('.')[0]!] ?? ami['*'] ?? DEFAULT_AMI;
}

/** AL2023's parameter names the CPU as EC2 does (x86_64, arm64). */
export function al2023Parameter(arch: string): string {
  return `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${arch}`;
}

/** Canonical's parameter names the CPU as Debian does (amd64, arm64). */
export function ubuntuParameter(release: string, arch: string): string {
  const cpu = arch === 'x86_64' ? 'amd64' : arch;
  const volume = Number(release) >= 23.1 ? 'ebs-gp3' : 'ebs-gp2';
  return `/aws/service/canonical/ubuntu/server/${release}/stable/current/${cpu}/hvm/${volume}/ami-id`;
}

/** Pure: what a setting asks for, or a UserError naming the setting. */
export function parseAmiSetting(setting: string): AmiSource {
  const s = setting.trim();
  if (AMI_ID.test(s)) return { kind: 'id', imageId: s };
  if (s === 'al2023') return { kind: 'ssm', parameter: al2023Parameter, label: 'Amazon Linux 2023' };
  const ubuntu = /^ubuntu-(\d\d\.\d\d)$/.exec(s);
  if (ubuntu) {
    if (!(UBUNTU_RELEASES as readonly string[]).includes(ubuntu[1]!)) {
      throw new UserError(`The ami setting "${s}" names an Ubuntu release gq does not support.`, {
        hint: `Use ${UBUNTU_RELEASES.map((r) => `ubuntu-${r}`).join(' or ')}, or an AMI id.`,
      });
    }
    return { kind: 'ssm', parameter: (arch) => ubuntuParameter(ubuntu[1]!, arch), label: `Ubuntu ${ubuntu[1]}` };
  }
  if (s.startsWith('ssm:')) {
    const name = s.slice(4);
    if (!SSM_NAME.test(name)) {
      throw new UserError(`The ami setting "${s}" is not an SSM parameter name.`, { hint: 'Write ssm:/full/parameter/name, e.g. ssm:/golden/ami.' });
    }
    return { kind: 'ssm', parameter: () => name, label: `SSM parameter ${name}` };
  }
  if (s === 'gurobi') return { kind: 'gurobi' };
  if (/^ami-/i.test(s)) {
    throw new UserError(`The ami setting "${s}" is not a valid AMI id.`, { hint: 'AMI ids look like ami-0123456789abcdef0 (8 or 17 hex digits).' });
  }
  const slash = s.indexOf('/');
  if (slash > 0 && OWNER.test(s.slice(0, slash))) return { kind: 'pattern', owner: s.slice(0, slash), pattern: s.slice(slash + 1) };
  if (!s) throw new UserError('The ami setting is empty.', { hint: `Use ${DEFAULT_AMI}, ubuntu-24.04, gurobi, an AMI id or OWNER/NAME-PATTERN.` });
  return { kind: 'pattern', owner: 'amazon', pattern: s };
}

/**
 * Pure: the architecture to ask for when the image is looked up for a type: the type's only
 * architecture, x86_64 for types that also run i386 (older x86 families), arm64 for Graviton.
 */
export function architectureFor(architectures: readonly string[]): string {
  if (architectures.includes('x86_64')) return 'x86_64';
  if (architectures.includes('arm64')) return 'arm64';
  return architectures[0] ?? 'x86_64';
}

/** Pure: why the image cannot run on the type, or undefined when it can. */
export function architectureProblem(image: { imageId: string; architecture?: string }, type: TypeArchitectures): string | undefined {
  if (!image.architecture || type.architectures.length === 0) return undefined;
  if (type.architectures.includes(image.architecture)) return undefined;
  return `AMI ${image.imageId} is built for ${image.architecture}, but ${type.instanceType} runs ${type.architectures.join(' or ')}`;
}

/** Pure: the DescribeImages request for a name pattern or the Gurobi product. */
export function describeImagesRequest(source: Extract<AmiSource, { kind: 'gurobi' | 'pattern' }>, architecture: string, opts: AmiOptions = {}): DescribeImagesCommandInput {
  const common = [
    { Name: 'architecture', Values: [architecture] },
    { Name: 'state', Values: ['available'] },
  ];
  if (source.kind === 'gurobi') {
    const code = opts.gurobiProductCode ?? DEFAULT_GUROBI_PRODUCT_CODE;
    if (!code) throw gurobiCodeMissing();
    // Owners aws-marketplace only: the product code alone would also match copies of the image
    // that other accounts made and shared.
    return { Owners: ['aws-marketplace'], Filters: [{ Name: 'product-code', Values: [code] }, ...common] };
  }
  return { Owners: [source.owner], Filters: [{ Name: 'name', Values: [source.pattern] }, ...common] };
}

function gurobiCodeMissing(): UserError {
  return new UserError('The ami setting "gurobi" needs the Marketplace product code of the Gurobi image.', {
    hint:
      'Subscribe to the Gurobi image in the AWS Marketplace, find its product code (the Marketplace listing, or ' +
      '`aws ec2 describe-images --owners aws-marketplace --filters "Name=name,Values=*gurobi*" --query "Images[].[Name,ProductCodes[0].ProductCodeId]"`), ' +
      'then set "gurobiProductCode" in the gq config (or GQ_GUROBI_PRODUCT_CODE, --gurobi-product-code).',
  });
}

/** The newest image (CreationDate is ISO 8601, so text order is time order). */
export function newest(images: readonly Image[]): Image | undefined {
  return [...images].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
}

function errName(err: unknown): string {
  return String((err as { name?: unknown })?.name ?? '');
}

async function describeOne(ec2: EC2Client, imageId: string, via: string): Promise<Image> {
  let images: Image[] = [];
  try {
    images = (await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }))).Images ?? [];
  } catch (err) {
    if (!/^InvalidAMIID\./.test(errName(err))) throw err;
  }
  const img = images[0];
  if (!img) {
    throw new UserError(`AMI ${imageId} (${via}) does not exist in this region, or is not shared with you.`, {
      hint: 'Check the `ami` setting: AMI ids differ between regions.',
    });
  }
  return img;
}

/**
 * Resolve a setting for an instance type, and check the image can run on it. `clients.ssm` is
 * needed only for SSM sources.
 */
export async function resolveAmi(
  clients: { ec2: EC2Client; ssm?: SSMClient },
  setting: string,
  type: TypeArchitectures,
  opts: AmiOptions = {},
): Promise<ResolvedAmi> {
  const source = parseAmiSetting(setting);
  const arch = architectureFor(type.architectures);
  let img: Image;
  let via: string;
  switch (source.kind) {
    case 'id':
      via = 'named in the ami setting';
      img = await describeOne(clients.ec2, source.imageId, via);
      break;
    case 'ssm': {
      const name = source.parameter(arch);
      via = `SSM ${name}`;
      if (!clients.ssm) throw new Error('resolveAmi: an SSM client is needed for ' + name);
      let value: string | undefined;
      try {
        value = (await clients.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
      } catch (err) {
        if (errName(err) !== 'ParameterNotFound') throw err;
      }
      if (!value || !AMI_ID.test(value)) {
        throw new UserError(`${source.label} for ${arch}: the SSM parameter ${name} ${value ? `holds "${value}", not an AMI id` : 'does not exist in this region'}.`, {
          hint: 'Pick another image with the `ami` setting (al2023, ubuntu-24.04, an AMI id), or another region.',
        });
      }
      img = await describeOne(clients.ec2, value, via);
      break;
    }
    case 'gurobi':
    case 'pattern': {
      const req = describeImagesRequest(source, arch, opts);
      const found = newest((await clients.ec2.send(new DescribeImagesCommand(req))).Images ?? []);
      via = source.kind === 'gurobi' ? `Marketplace product ${req.Filters![0]!.Values![0]}` : `newest ${source.pattern} owned by ${source.owner}`;
      if (!found?.ImageId) {
        throw new UserError(
          source.kind === 'gurobi'
            ? `No ${arch} Gurobi image (product code ${req.Filters![0]!.Values![0]}) is available to this account in this region.`
            : `No ${arch} AMI named "${source.pattern}" owned by ${source.owner}.`,
          {
            hint:
              source.kind === 'gurobi'
                ? 'Subscribe to the Gurobi image in the AWS Marketplace first (and check "gurobiProductCode"), or set `ami` to an AMI id.'
                : source.owner === 'amazon'
                  ? 'A bare name pattern searches images owned by Amazon only; for your own images write "self/PATTERN" (or ACCOUNT/PATTERN), or use an AMI id.'
                  : 'Set `ami` in the config file to an AMI id or an OWNER/PATTERN that exists in this region.',
          },
        );
      }
      img = found;
      break;
    }
  }
  const resolved: ResolvedAmi = {
    imageId: img.ImageId ?? '',
    rootDeviceName: img.RootDeviceName,
    rootVolumeGb: img.BlockDeviceMappings?.find((m) => m.DeviceName === img.RootDeviceName)?.Ebs?.VolumeSize,
    name: img.Name,
    architecture: img.Architecture,
    ownerId: img.OwnerId,
    via,
  };
  const problem = architectureProblem(resolved, type);
  if (problem) {
    throw new UserError(`${problem}.`, {
      hint: `Set \`ami\` for ${type.instanceType} to an image for ${type.architectures.join(' or ')}, or pick an instance type for ${resolved.architecture}.`,
    });
  }
  return resolved;
}
