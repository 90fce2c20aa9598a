/** fleet-health.ts against fake SDK clients: paging of activities, denied calls, instances by tag. */
import { describe, expect, it } from 'vitest';
import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { consoleOutput, jobInstances, recentActivities } from '../../src/aws/fleet-health.js';

const denied = (name: string) => Object.assign(new Error('not authorized'), { name });

function fakeAsg(pages: Array<{ Activities: object[]; NextToken?: string }>) {
  const calls: Array<Record<string, unknown>> = [];
  const client = {
    send: async (cmd: { input: Record<string, unknown> }) => {
      calls.push(cmd.input);
      return pages[calls.length - 1]!;
    },
  } as unknown as AutoScalingClient;
  return { client, calls };
}

describe('recentActivities', () => {
  const at = (m: number) => new Date(Date.UTC(2026, 11, 1, 8, m));
  it('reads 100 a page and stops at the page holding a successful launch', async () => {
    const { client, calls } = fakeAsg([
      { Activities: [{ StartTime: at(5), StatusCode: 'Failed', StatusMessage: 'x', Description: 'Launching a new EC2 instance.  Status Reason: x' }], NextToken: 't1' },
      { Activities: [{ StartTime: at(1), StatusCode: 'Successful', Description: 'Launching a new EC2 instance: i-1' }], NextToken: 't2' },
      { Activities: [] },
    ]);
    const got = await recentActivities(client, 'gq-j-t3.micro');
    expect(calls).toEqual([
      { AutoScalingGroupName: 'gq-j-t3.micro', MaxRecords: 100 },
      { AutoScalingGroupName: 'gq-j-t3.micro', MaxRecords: 100, NextToken: 't1' },
    ]);
    expect(got.map((a) => a.statusCode)).toEqual(['Failed', 'Successful']);
    expect(got[0]).toEqual({ startTime: at(5).getTime(), statusCode: 'Failed', statusMessage: 'x', description: 'Launching a new EC2 instance.  Status Reason: x' });
  });

  it('reads at most 3 pages', async () => {
    const page = { Activities: [{ StartTime: at(1), StatusCode: 'Failed', Description: 'Launching a new EC2 instance' }], NextToken: 'more' };
    const { client, calls } = fakeAsg([page, page, page, page]);
    expect(await recentActivities(client, 'g')).toHaveLength(3);
    expect(calls).toHaveLength(3);
  });

  it('is empty when the caller may not read activities; other errors pass', async () => {
    const failing = (e: Error) => ({ send: async () => Promise.reject(e) }) as unknown as AutoScalingClient;
    expect(await recentActivities(failing(denied('AccessDenied')), 'g')).toEqual([]);
    await expect(recentActivities(failing(denied('Throttling')), 'g')).rejects.toThrow('not authorized');
  });
});

describe('jobInstances and consoleOutput', () => {
  it("lists the job's instances of any state, with their type tag and state reason", async () => {
    const ec2 = {
      send: async () => ({
        Reservations: [
          {
            Instances: [
              {
                InstanceId: 'i-2', InstanceType: 't3.micro', LaunchTime: new Date('2026-12-01T08:02:00Z'), State: { Name: 'terminated' },
                StateReason: { Code: 'Client.InternalError', Message: 'Client.InternalError: Client error on launch' },
                Tags: [{ Key: 'gq:job', Value: 'j' }, { Key: 'gq:instance-type', Value: 't3.micro' }],
              },
              { InstanceId: 'i-other', LaunchTime: new Date(), State: { Name: 'running' }, Tags: [{ Key: 'gq:job', Value: 'j2' }] },
              { InstanceId: 'i-1', InstanceType: 'c5.large', LaunchTime: new Date('2026-12-01T08:01:00Z'), State: { Name: 'running' }, Tags: [{ Key: 'gq:job', Value: 'j' }] },
            ],
          },
        ],
      }),
    } as unknown as EC2Client;
    expect(await jobInstances(ec2, 'j')).toEqual([
      { id: 'i-1', instanceType: 'c5.large', launchedAt: '2026-12-01T08:01:00.000Z', state: 'running' },
      { id: 'i-2', instanceType: 't3.micro', launchedAt: '2026-12-01T08:02:00.000Z', state: 'terminated', stateReason: 'Client.InternalError: Client error on launch' },
    ]);
  });

  it('decodes the console output, and is undefined when gq may not read it', async () => {
    const ok = { send: async () => ({ Output: Buffer.from('boot failed: x\n').toString('base64') }) } as unknown as EC2Client;
    expect(await consoleOutput(ok, 'i-1')).toBe('boot failed: x\n');
    const no = { send: async () => Promise.reject(denied('UnauthorizedOperation')) } as unknown as EC2Client;
    expect(await consoleOutput(no, 'i-1')).toBeUndefined();
    expect(await jobInstances(no, 'j')).toEqual([]);
  });
});
