/**
 * The AMI for an instance type: the `ami` setting for that type, else for "*", else Amazon Linux
 * 2023. A value is an AMI id (checked to exist), "gurobi" (the newest Gurobi marketplace image, as
 * the older tool used) or a name pattern; patterns pick the newest image for the type's architecture.
 */
import { DescribeImagesCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { UserError } from '@gq/common';

export const DEFAULT_AMI_PATTERN = 'al2023-ami-2023.*-kernel-*';
const GUROBI_PATTERN = '*gurobi*';

export function amiSettingFor(ami: Record<string, string>, instanceType: string): string {
  return ami[instanceType] ?? ami[instanceType.split('.')[0]!] ?? ami['*'] ?? DEFAULT_AMI_PATTERN;
}

function newest(images: Image[]): Image | undefined {
  return [...images].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
}

export async function resolveAmi(ec2: EC2Client, setting: string, architecture: string): Promise<{ imageId: string; rootDeviceName?: string; name?: string }> {
  if (/^ami-[0-9a-f]+$/.test(setting)) {
    const r = await ec2.send(new DescribeImagesCommand({ ImageIds: [setting] })).catch(() => ({ Images: [] as Image[] }));
    const img = r.Images?.[0];
    if (!img) throw new UserError(`AMI ${setting} does not exist in this region (or is not shared with you).`, { hint: 'Check the `ami` setting: AMI ids differ between regions.' });
    return { imageId: setting, rootDeviceName: img.RootDeviceName, name: img.Name };
  }
  const pattern = setting === 'gurobi' ? GUROBI_PATTERN : setting;
  const owners = setting === 'gurobi' ? ['aws-marketplace'] : ['amazon', 'self', 'aws-marketplace'];
  const r = await ec2.send(
    new DescribeImagesCommand({
      Owners: owners,
      Filters: [
        { Name: 'name', Values: [pattern] },
        { Name: 'architecture', Values: [architecture] },
        { Name: 'state', Values: ['available'] },
      ],
    }),
  );
  const img = newest(r.Images ?? []);
  if (!img?.ImageId) {
    throw new UserError(`No ${architecture} AMI matches "${pattern}".`, {
      hint: setting === 'gurobi' ? 'Subscribe to the Gurobi AMI in the AWS Marketplace first, or set `ami` to an AMI id.' : 'Set `ami` in the config file to an AMI id or a name pattern that exists in this region.',
    });
  }
  return { imageId: img.ImageId, rootDeviceName: img.RootDeviceName, name: img.Name };
}
