/** Pure parts of the per-job role (job-role.ts) and of `gq setup`'s network parameters. */
import { describe, expect, it } from 'vitest';
import { jobRoleRequest, EC2_TRUST_POLICY } from '../src/aws/job-role.js';
import { setupParameters } from '../src/commands/setup.js';
import { licenceExpiry, LICENCE_LIFETIME_SECONDS } from '../src/commands/submit.js';

const settings = { path: '/gq/gq/', policyArn: 'arn:aws:iam::1:policy/a', boundaryArn: 'arn:aws:iam::1:policy/b', stack: 'gq', region: 'eu-west-1' };

describe('jobRoleRequest', () => {
  it('names the role after the job and region, under the stack path, tagged with the job', () => {
    expect(jobRoleRequest(settings, 'my-job')).toEqual({
      name: 'gq-my-job-eu-west-1',
      path: '/gq/gq/',
      tags: [
        { Key: 'gq-job', Value: 'my-job' },
        { Key: 'gq:stack', Value: 'gq' },
      ],
    });
    expect(JSON.parse(EC2_TRUST_POLICY).Statement[0].Principal).toEqual({ Service: 'ec2.amazonaws.com' });
  });

  it('refuses a path IAM would refuse, before any request', () => {
    for (const path of ['gq/', '/gq', '/g q/', `/${'x'.repeat(520)}/`]) {
      expect(() => jobRoleRequest({ ...settings, path }, 'my-job'), path).toThrow(/IAM path/);
    }
    expect(() => jobRoleRequest({ ...settings, stack: 's'.repeat(300) }, 'my-job')).toThrow(/too long/);
  });
});

describe('setupParameters', () => {
  it('maps the network options to the stack parameters', () => {
    expect(
      setupParameters({
        stack: 'gq',
        region: 'us-east-1',
        egress: 'https-only',
        publicIpv4: 'none',
        subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        gatewayEndpointRouteTables: ['rtb-0123456789abcdef0'],
      }),
    ).toEqual({
      AgentEgress: 'https-only',
      PublicIpv4: 'none',
      SubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
      GatewayEndpointRouteTableIds: 'rtb-0123456789abcdef0',
    });
    expect(setupParameters({ stack: 'gq', region: 'us-east-1' })).toEqual({});
  });

  it('refuses bad values with the setting named', () => {
    expect(() => setupParameters({ stack: 'gq', region: 'r', egress: 'ssh' })).toThrow(/--egress ssh is not one of https-only, http-and-https, all/);
    expect(() => setupParameters({ stack: 'gq', region: 'r', publicIpv4: 'off' })).toThrow(/--public-ipv4/);
    expect(() => setupParameters({ stack: 'gq', region: 'r', subnetIds: ['sub-1'] })).toThrow(/--subnets: "sub-1"/);
    expect(() => setupParameters({ stack: 'gq', region: 'r', gatewayEndpointRouteTables: ['rt-1'] })).toThrow(/--gateway-endpoints/);
  });
});

describe('licence expiry', () => {
  it('is 30 days after now, in epoch seconds (the table TTL attribute)', () => {
    expect(LICENCE_LIFETIME_SECONDS).toBe(30 * 86_400);
    expect(licenceExpiry(1_000_000_000_500)).toBe(1_000_000_000 + 30 * 86_400);
  });
});

describe('accessDenied', () => {
  it('turns an AWS access-denied error into a UserError naming the user policy, and nothing else', async () => {
    const { accessDenied } = await import('../src/access-denied.js');
    const err = Object.assign(new Error('User: arn:aws:iam::1:user/a is not authorized to perform: iam:CreateRole'), { name: 'AccessDenied' });
    const u = accessDenied(err)!;
    expect(u.message).toBe('AWS refused a request: AccessDenied.');
    expect(u.details).toEqual(['User: arn:aws:iam::1:user/a is not authorized to perform: iam:CreateRole']);
    expect(u.hint).toMatch(/UserPolicyArn/);
    expect(accessDenied(Object.assign(new Error('x'), { name: 'UnauthorizedOperation' }))).toBeDefined();
    expect(accessDenied(Object.assign(new Error('not authorized'), { name: 'ValidationError' }))).toBeUndefined();
    expect(accessDenied('AccessDenied')).toBeUndefined();
  });
});
