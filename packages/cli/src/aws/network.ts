/**
 * The network that gq's workers launch into, read for `gq doctor` and `gq submit`: the subnets
 * of the stack's VPC, whether each one reaches the AWS endpoints the agent needs, and in which of
 * their zones an instance type is offered. The decisions are pure functions over plain records;
 * the describe calls that fill them are below them.
 *
 * A worker needs S3, DynamoDB, SQS, EC2 Auto Scaling, EC2 (its tags) and STS. A subnet reaches
 * them through one of
 *   - a default route (0.0.0.0/0) to an internet gateway, with a public IPv4 address on launch
 *     (the subnet's MapPublicIpOnLaunch: gq's launch template does not ask for one itself);
 *   - a default route to a NAT gateway;
 *   - VPC endpoints: gateway endpoints for S3 and DynamoDB on the subnet's route table, interface
 *     endpoints with private DNS for the others (the SDK's default host names must resolve to them).
 * A subnet without an explicit route table association uses the VPC's main route table
 * (https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html#RouteTables).
 */
import {
  DescribeInstanceTypeOfferingsCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
  type EC2Client,
  type RouteTable,
  type Subnet,
  type VpcEndpoint,
} from '@aws-sdk/client-ec2';
import { UserError } from '@gq/common';

/** Services the agent calls, by the kind of VPC endpoint that serves them without internet. */
export const GATEWAY_SERVICES = ['s3', 'dynamodb'] as const;
export const INTERFACE_SERVICES = ['sqs', 'autoscaling', 'ec2', 'sts'] as const;

export interface RouteInfo {
  destination?: string;
  gatewayId?: string;
  natGatewayId?: string;
  /** Any other target (NAT instance, network interface, transit gateway, peering). */
  otherTarget?: string;
  state?: string;
}

export interface SubnetInfo {
  subnetId: string;
  az: string;
  mapPublicIp: boolean;
  routeTableId?: string;
  /** True when the subnet has no association of its own and uses the VPC's main table. */
  mainTable: boolean;
  routes: RouteInfo[];
}

export interface EndpointInfo {
  /** The last part of the service name: com.amazonaws.us-east-1.s3 → s3. */
  service: string;
  type: string;
  state: string;
  routeTableIds: string[];
  privateDns: boolean;
}

export interface Verdict {
  status: 'ok' | 'FAIL' | 'warn';
  detail: string;
  fix?: string;
}

const DEFAULT_ROUTE = '0.0.0.0/0';

/** Pure: does this subnet reach every service the agent needs, and how. */
export function subnetReach(s: SubnetInfo, endpoints: readonly EndpointInfo[]): Verdict {
  const table = s.routeTableId ? `${s.routeTableId}${s.mainTable ? ' (the main route table)' : ''}` : 'no route table';
  const def = s.routes.find((r) => r.destination === DEFAULT_ROUTE && r.state !== 'blackhole');
  let note = '';
  if (def?.gatewayId?.startsWith('igw-')) {
    if (s.mapPublicIp) {
      return { status: 'ok', detail: `${s.subnetId} (${s.az}): internet gateway ${def.gatewayId}, public IPv4 on launch` };
    }
    note = `its route to ${def.gatewayId} is of no use without a public IPv4 address (MapPublicIpOnLaunch is off); `;
  } else if (def?.natGatewayId) {
    return { status: 'ok', detail: `${s.subnetId} (${s.az}): NAT gateway ${def.natGatewayId}` };
  } else if (def?.otherTarget) {
    return {
      status: 'warn',
      detail: `${s.subnetId} (${s.az}): default route via ${def.otherTarget}; gq cannot tell whether it reaches AWS`,
      fix: 'make sure that target forwards to the internet (or use a NAT gateway or VPC endpoints)',
    };
  }
  const available = endpoints.filter((e) => e.state.toLowerCase() === 'available');
  const served = (svc: string, gateway: boolean) =>
    available.some(
      (e) =>
        e.service === svc &&
        ((gateway && e.type.toLowerCase() === 'gateway' && !!s.routeTableId && e.routeTableIds.includes(s.routeTableId)) ||
          (e.type.toLowerCase() === 'interface' && e.privateDns)),
    );
  const missingGw = GATEWAY_SERVICES.filter((svc) => !served(svc, true));
  const missingIf = INTERFACE_SERVICES.filter((svc) => !served(svc, false));
  if (!missingGw.length && !missingIf.length) {
    return {
      status: 'ok',
      detail: `${s.subnetId} (${s.az}): VPC endpoints for ${[...GATEWAY_SERVICES, ...INTERFACE_SERVICES].join(', ')} (no internet: INSTALL.sh cannot download anything)`,
    };
  }
  const missing = [...missingGw, ...missingIf];
  const fixes = [
    `add a route ${DEFAULT_ROUTE} to an internet gateway in ${s.routeTableId ?? 'its route table'} and turn on public IPv4 (aws ec2 modify-subnet-attribute --subnet-id ${s.subnetId} --map-public-ip-on-launch)`,
    'or a route to a NAT gateway',
    `or VPC endpoints: ${[
      missingGw.length ? `gateway endpoints for ${missingGw.join(', ')} on ${s.routeTableId ?? 'its route table'}` : '',
      missingIf.length ? `interface endpoints with private DNS for ${missingIf.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(', ')}`,
  ];
  return {
    status: 'FAIL',
    detail: `${s.subnetId} (${s.az}), ${table}: ${note}no route to the internet and no VPC endpoint for ${missing.join(', ')}; workers there would never report`,
    fix: fixes.join('; '),
  };
}

/** Pure: is the type offered in the zones of gq's subnets. */
export function offeringVerdict(instanceType: string, zones: readonly string[], offeredIn: readonly string[]): Verdict {
  const offered = new Set(offeredIn);
  const yes = zones.filter((z) => offered.has(z));
  const no = zones.filter((z) => !offered.has(z));
  if (!yes.length) {
    return {
      status: 'FAIL',
      detail: `${instanceType} is not offered in any zone of gq's subnets (${zones.join(', ') || 'none'})`,
      fix: `pick another instance type, or add subnets in zones that offer it (aws ec2 describe-instance-type-offerings --location-type availability-zone --filters Name=instance-type,Values=${instanceType})`,
    };
  }
  if (no.length) {
    return {
      status: 'warn',
      detail: `${instanceType} is offered in ${yes.join(', ')} but not in ${no.join(', ')}: launches there fail and Auto Scaling tries the others`,
      fix: 'nothing required; remove the subnets of those zones from the VPC to avoid failed launch attempts',
    };
  }
  return { status: 'ok', detail: `${instanceType} is offered in ${yes.join(', ')}` };
}

// ---------------------------------------------------------------------------------------------
// Describe calls

function toRoute(r: NonNullable<RouteTable['Routes']>[number]): RouteInfo {
  const other = r.InstanceId ?? r.NetworkInterfaceId ?? r.TransitGatewayId ?? r.VpcPeeringConnectionId ?? r.LocalGatewayId ?? r.CarrierGatewayId;
  return {
    destination: r.DestinationCidrBlock,
    gatewayId: r.GatewayId,
    natGatewayId: r.NatGatewayId,
    otherTarget: other,
    state: r.State,
  };
}

/** The subnets of the security group's VPC (or of the default VPC), sorted by id. */
export async function stackSubnets(
  ec2: EC2Client,
  securityGroupId: string | undefined,
  /** The stack's Subnets parameter (gq setup --subnets): exactly these, when given. */
  subnetIds?: readonly string[],
): Promise<{ vpcId?: string; subnets: Subnet[] }> {
  if (subnetIds?.length) {
    const chosen = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [...subnetIds] }));
    const subnets = (chosen.Subnets ?? []).filter((s) => s.SubnetId).sort((a, b) => a.SubnetId!.localeCompare(b.SubnetId!));
    return { vpcId: subnets[0]?.VpcId, subnets };
  }
  let vpc: string | undefined;
  if (securityGroupId) {
    const sg = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [securityGroupId] }));
    vpc = sg.SecurityGroups?.[0]?.VpcId;
  }
  const r = await ec2.send(
    new DescribeSubnetsCommand({ Filters: vpc ? [{ Name: 'vpc-id', Values: [vpc] }] : [{ Name: 'default-for-az', Values: ['true'] }] }),
  );
  const subnets = (r.Subnets ?? []).filter((s) => s.SubnetId).sort((a, b) => a.SubnetId!.localeCompare(b.SubnetId!));
  if (!subnets.length) {
    throw new UserError(`No subnets found in ${vpc ?? 'the default VPC'}.`, { hint: 'Run `gq setup --vpc-id VPC` with a VPC that has subnets.' });
  }
  return { vpcId: vpc ?? subnets[0]!.VpcId, subnets };
}

/** Each subnet with its effective route table (its own association, else the VPC's main one). */
export async function describeSubnetRoutes(ec2: EC2Client, vpcId: string, subnets: readonly Subnet[]): Promise<SubnetInfo[]> {
  const tables: RouteTable[] = [];
  let token: string | undefined;
  do {
    const out = await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }], NextToken: token }));
    tables.push(...(out.RouteTables ?? []));
    token = out.NextToken;
  } while (token);
  const main = tables.find((t) => t.Associations?.some((a) => a.Main));
  return subnets.map((s) => {
    const own = tables.find((t) => t.Associations?.some((a) => a.SubnetId === s.SubnetId));
    const t = own ?? main;
    return {
      subnetId: s.SubnetId!,
      az: s.AvailabilityZone ?? '?',
      mapPublicIp: Boolean(s.MapPublicIpOnLaunch),
      routeTableId: t?.RouteTableId,
      mainTable: !own && !!t,
      routes: (t?.Routes ?? []).map(toRoute),
    };
  });
}

export async function describeEndpoints(ec2: EC2Client, vpcId: string): Promise<EndpointInfo[]> {
  const found: VpcEndpoint[] = [];
  let token: string | undefined;
  do {
    const out = await ec2.send(new DescribeVpcEndpointsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }], NextToken: token }));
    found.push(...(out.VpcEndpoints ?? []));
    token = out.NextToken;
  } while (token);
  return found.map((e) => ({
    service: (e.ServiceName ?? '').split('.').pop() ?? '',
    type: String(e.VpcEndpointType ?? ''),
    state: String(e.State ?? ''),
    routeTableIds: e.RouteTableIds ?? [],
    privateDns: Boolean(e.PrivateDnsEnabled),
  }));
}

/**
 * Types per request. The EC2 Filter reference documents no cap on the values of one filter, but
 * EC2 is known to refuse long lists (200 values is the limit others report): stay well below.
 */
const TYPES_PER_REQUEST = 100;

/**
 * The zones (of `zones`) that offer each type: DescribeInstanceTypeOfferings with location type
 * availability-zone, filtered by instance-type and location
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html).
 */
export async function offeredZones(ec2: EC2Client, types: readonly string[], zones: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(types.map((t) => [t, []]));
  for (let i = 0; i < types.length; i += TYPES_PER_REQUEST) {
    let token: string | undefined;
    do {
      const r = await ec2.send(
        new DescribeInstanceTypeOfferingsCommand({
          LocationType: 'availability-zone',
          Filters: [
            { Name: 'instance-type', Values: types.slice(i, i + TYPES_PER_REQUEST) },
            { Name: 'location', Values: [...zones] },
          ],
          NextToken: token,
        }),
      );
      for (const o of r.InstanceTypeOfferings ?? []) {
        if (o.InstanceType && o.Location) out.get(o.InstanceType)?.push(o.Location);
      }
      token = r.NextToken;
    } while (token);
  }
  return out;
}
