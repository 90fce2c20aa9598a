/** aws/network.ts decisions (pure): a subnet's way to the AWS endpoints, and type offerings by zone. */
import { describe, expect, it } from 'vitest';
import { offeringVerdict, subnetReach, type EndpointInfo, type SubnetInfo } from '../src/aws/network.js';

const LOCAL = { destination: '10.0.0.0/16', gatewayId: 'local', state: 'active' };

function subnet(over: Partial<SubnetInfo> = {}): SubnetInfo {
  return { subnetId: 'subnet-1', az: 'us-east-1a', mapPublicIp: false, routeTableId: 'rtb-1', mainTable: false, routes: [LOCAL], ...over };
}

const gateway = (service: string, routeTableIds = ['rtb-1']): EndpointInfo => ({ service, type: 'Gateway', state: 'available', routeTableIds, privateDns: false });
const iface = (service: string, privateDns = true): EndpointInfo => ({ service, type: 'Interface', state: 'available', routeTableIds: [], privateDns });
const ALL = [gateway('s3'), gateway('dynamodb'), iface('sqs'), iface('autoscaling'), iface('ec2'), iface('sts')];

describe('subnetReach', () => {
  it('internet gateway with a public IP on launch: ok', () => {
    const v = subnetReach(subnet({ mapPublicIp: true, routes: [LOCAL, { destination: '0.0.0.0/0', gatewayId: 'igw-1', state: 'active' }] }), []);
    expect(v).toMatchObject({ status: 'ok', detail: expect.stringContaining('internet gateway igw-1') });
  });

  it('internet gateway without a public IP: no way out, and it says why', () => {
    const v = subnetReach(subnet({ routes: [LOCAL, { destination: '0.0.0.0/0', gatewayId: 'igw-1', state: 'active' }] }), []);
    expect(v.status).toBe('FAIL');
    expect(v.detail).toMatch(/MapPublicIpOnLaunch is off/);
    expect(v.fix).toMatch(/modify-subnet-attribute --subnet-id subnet-1 --map-public-ip-on-launch/);
  });

  it('NAT gateway: ok, public IP or not', () => {
    expect(subnetReach(subnet({ routes: [LOCAL, { destination: '0.0.0.0/0', natGatewayId: 'nat-1', state: 'active' }] }), []).status).toBe('ok');
  });

  it('a blackhole default route does not count', () => {
    const v = subnetReach(subnet({ mapPublicIp: true, routes: [LOCAL, { destination: '0.0.0.0/0', gatewayId: 'igw-1', state: 'blackhole' }] }), []);
    expect(v.status).toBe('FAIL');
  });

  it('no default route: every endpoint needed, each missing one named with its kind', () => {
    expect(subnetReach(subnet(), ALL)).toMatchObject({ status: 'ok', detail: expect.stringContaining('VPC endpoints') });
    const v = subnetReach(subnet({ mainTable: true }), [gateway('s3'), iface('sqs'), iface('ec2', false)]);
    expect(v.status).toBe('FAIL');
    expect(v.detail).toMatch(/rtb-1 \(the main route table\)/);
    expect(v.detail).toMatch(/no VPC endpoint for dynamodb, autoscaling, ec2, sts/);
    expect(v.fix).toMatch(/gateway endpoints for dynamodb on rtb-1/);
    expect(v.fix).toMatch(/interface endpoints with private DNS for autoscaling, ec2, sts/);
  });

  it('a gateway endpoint on another route table does not serve this subnet; one not available does not count', () => {
    const others = ALL.filter((e) => e.service !== 's3');
    expect(subnetReach(subnet(), [gateway('s3', ['rtb-2']), ...others]).detail).toMatch(/no VPC endpoint for s3/);
    expect(subnetReach(subnet(), [{ ...gateway('s3'), state: 'pending' }, ...others]).status).toBe('FAIL');
    // An interface endpoint with private DNS serves S3 too.
    expect(subnetReach(subnet(), [iface('s3'), ...others]).status).toBe('ok');
  });

  it('a default route to something else: a warning, gq cannot see past it', () => {
    const v = subnetReach(subnet({ routes: [LOCAL, { destination: '0.0.0.0/0', otherTarget: 'tgw-1', state: 'active' }] }), []);
    expect(v).toMatchObject({ status: 'warn', detail: expect.stringContaining('tgw-1') });
  });
});

describe('offeringVerdict', () => {
  it('ok where every zone offers the type, warn where some do, FAIL where none does', () => {
    expect(offeringVerdict('m5.large', ['us-east-1a', 'us-east-1b'], ['us-east-1a', 'us-east-1b']).status).toBe('ok');
    const some = offeringVerdict('m5.large', ['us-east-1a', 'us-east-1e'], ['us-east-1a']);
    expect(some).toMatchObject({ status: 'warn', detail: expect.stringContaining('not in us-east-1e') });
    const none = offeringVerdict('p5.48xlarge', ['us-east-1a'], []);
    expect(none.status).toBe('FAIL');
    expect(none.fix).toMatch(/describe-instance-type-offerings --location-type availability-zone/);
  });
});
