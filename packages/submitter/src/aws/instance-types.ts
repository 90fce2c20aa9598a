/** Instance types of a job file checked against EC2 before anything is written. */
import { DescribeInstanceTypesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { UserError, type Config } from '@gq/common';

export interface TypeInfo {
  instanceType: string;
  architectures: string[];
  vcpus: number;
}

/** One DescribeInstanceTypes per type (EC2 rejects the whole call when one type is unknown). */
export async function describeTypes(ec2: EC2Client, types: readonly string[]): Promise<{ known: TypeInfo[]; unknown: string[] }> {
  const known: TypeInfo[] = [];
  const unknown: string[] = [];
  await Promise.all(
    types.map(async (t) => {
      try {
        const r = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: [t as never] }));
        const info = r.InstanceTypes?.[0];
        if (!info) unknown.push(t);
        else known.push({ instanceType: t, architectures: (info.ProcessorInfo?.SupportedArchitectures ?? ['x86_64']) as string[], vcpus: info.VCpuInfo?.DefaultVCpus ?? 1 });
      } catch (e) {
        if ((e as { name?: string }).name === 'InvalidInstanceType' || (e as { name?: string }).name === 'InvalidParameterValue') unknown.push(t);
        else throw e;
      }
    }),
  );
  return { known, unknown: unknown.sort() };
}

export async function checkInstanceTypes(config: Config, types: readonly string[], jobfile: string): Promise<TypeInfo[]> {
  const { makeAwsClients } = await import('@gq/common/aws/index');
  const { ec2 } = makeAwsClients({ region: config.region, profile: config.profile });
  const { known, unknown } = await describeTypes(ec2, types);
  if (unknown.length) {
    throw new UserError(`${jobfile}: EC2 does not offer ${unknown.map((t) => `"${t}"`).join(', ')} in ${config.region ?? 'this region'}.`, {
      hint: 'Check the spelling, or pick a type listed by `aws ec2 describe-instance-types` for this region.',
    });
  }
  return known;
}
