/** Instance types of a job file checked against EC2 before anything is written. */
import { DescribeInstanceTypesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { JobFileError, UserError, type Config, type ParsedJobFile } from '@gq/common';

export interface TypeInfo {
  instanceType: string;
  architectures: string[];
  vcpus: number;
  /** Memory in MiB (0 when EC2 does not say). */
  memoryMiB: number;
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
        else known.push({ instanceType: t, architectures: (info.ProcessorInfo?.SupportedArchitectures ?? ['x86_64']) as string[], vcpus: info.VCpuInfo?.DefaultVCpus ?? 1, memoryMiB: info.MemoryInfo?.SizeInMiB ?? 0 });
      } catch (e) {
        if ((e as { name?: string }).name === 'InvalidInstanceType' || (e as { name?: string }).name === 'InvalidParameterValue') unknown.push(t);
        else throw e;
      }
    }),
  );
  return { known, unknown: unknown.sort() };
}

/**
 * Every instance type of the job file must exist in the region: a JobFileError naming the line
 * that first uses each unknown type (from the parse: `job.lines`). Called before anything is written.
 */
export async function checkInstanceTypes(config: Config, job: ParsedJobFile, jobfile: string): Promise<TypeInfo[]> {
  const { tasks, lines } = job;
  const types = [...new Set(tasks.map((t) => t.instanceType))].sort();
  const { makeAwsClients } = await import('@gq/common/aws/index');
  const { resolveRegion } = await import('./region.js');
  const region = await resolveRegion(config);
  const clients = makeAwsClients({ region, profile: config.profile });
  try {
    const { known, unknown } = await describeTypes(clients.ec2, types);
    if (unknown.length) {
      const problems = unknown.map((type) => {
        const uses = tasks.filter((t) => t.instanceType === type).length;
        const line = lines[tasks.findIndex((t) => t.instanceType === type)] ?? 0;
        return {
          line,
          column: 'instance_type',
          message: `EC2 does not offer the instance type "${type}" in ${region}${uses > 1 ? `; ${uses} tasks use it` : ''}`,
          hint: 'check the spelling, or pick a type that `aws ec2 describe-instance-types` lists for this region',
        };
      });
      throw new JobFileError(jobfile, problems, problems.length);
    }
    await checkAmis(config, region, clients.ec2, known);
    if (config.spot) await checkStandIns(config, clients.ec2, known);
    return known;
  } finally {
    clients.destroy();
  }
}

/**
 * Each type's AMI exists and is built for its architecture (aws/ami.ts), before anything is
 * written: an arm64 image for an x86 type is refused here, not found out by a failed launch.
 */
async function checkAmis(config: Config, region: string, ec2: EC2Client, known: readonly TypeInfo[]): Promise<void> {
  const { SSMClient } = await import('@aws-sdk/client-ssm');
  const { amiSettingFor, resolveAmi } = await import('./ami.js');
  const { installCallLog } = await import('@gq/common/aws/index');
  const ssm = new SSMClient({ region, ...(config.profile ? { profile: config.profile } : {}) });
  installCallLog(ssm, 'SSM');
  const problems: UserError[] = [];
  try {
    for (const t of known) {
      try {
        await resolveAmi({ ec2, ssm }, amiSettingFor(config.ami, t.instanceType), t, { gurobiProductCode: config.gurobiProductCode });
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        problems.push(err);
      }
    }
  } finally {
    ssm.destroy();
  }
  const [first, ...rest] = problems;
  if (first) throw new UserError(first.message, { hint: first.hint, details: rest.map((e) => e.message), cause: first });
}

/**
 * Why `alt` cannot stand in for `base` in its group: the group's one AMI and UserData must run on
 * it (an architecture in common), and a task sized for `base` must fit (vCPUs and memory).
 */
export function standInProblem(base: TypeInfo, alt: TypeInfo): string | undefined {
  if (!alt.architectures.some((a) => base.architectures.includes(a))) {
    return `${alt.instanceType} (${alt.architectures.join(', ')}) cannot run ${base.instanceType}'s image (${base.architectures.join(', ')})`;
  }
  if (alt.vcpus < base.vcpus) return `${alt.instanceType} has ${alt.vcpus} vCPUs, fewer than ${base.instanceType}'s ${base.vcpus}`;
  if (alt.memoryMiB < base.memoryMiB) return `${alt.instanceType} has ${alt.memoryMiB} MiB of memory, less than ${base.instanceType}'s ${base.memoryMiB}`;
  return undefined;
}

/** The `spotAlternatives` of the job's types: each exists in the region and can stand in (standInProblem). */
export async function checkStandIns(config: Pick<Config, 'spotAlternatives'>, ec2: EC2Client, known: readonly TypeInfo[]): Promise<void> {
  const problems: string[] = [];
  for (const base of known) {
    const alts = config.spotAlternatives[base.instanceType] ?? [];
    if (alts.length === 0) continue;
    const { known: found, unknown } = await describeTypes(ec2, alts);
    for (const u of unknown) problems.push(`EC2 does not offer the stand-in type "${u}" (for ${base.instanceType}) in this region`);
    for (const alt of found) {
      const p = standInProblem(base, alt);
      if (p) problems.push(p);
    }
  }
  const [first, ...rest] = problems;
  if (first) {
    throw new UserError(`spotAlternatives: ${first}.`, {
      hint: 'A stand-in type needs the same architecture and at least the vCPUs and memory of the type it stands in for; fix or drop it.',
      details: rest,
    });
  }
}
