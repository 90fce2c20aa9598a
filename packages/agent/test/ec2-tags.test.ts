/**
 * The agent's own EC2 calls (through the strict layer, moto): its tags, best effort past EC2's 50
 * tags per resource; and the price it records, on-demand from the shipped table or Spot from
 * DescribeSpotPriceHistory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeImagesCommand, DescribeTagsCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describeAws, motoClients, startMoto, type Moto } from '../../../test/support/moto.js';
import { tagInstance } from '../src/aws/ec2-tags.js';
import { billingFacts } from '../src/aws/price.js';
import type { Imds } from '../src/aws/imds.js';

/** The metadata a test instance shows: its life cycle and its Availability Zone. */
const imds = (lifecycle: string | undefined) =>
  ({ get: async (p: string) => (p === 'meta-data/instance-life-cycle' ? lifecycle : undefined), availabilityZone: async () => 'us-east-1a' }) as unknown as Imds;


describeAws('tagInstance and billingFacts (moto)', () => {
  let moto: Moto;
  const saved = process.env.AWS_ENDPOINT_URL;
  beforeAll(async () => {
    moto = (await startMoto())!;
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
    await moto?.stop();
  });

  it('sets the tag, and a 51st tag is dropped rather than failing the task', async () => {
    const c = motoClients(moto.endpoint);
    try {
      const ami = (await c.ec2.send(new DescribeImagesCommand({}))).Images![0]!.ImageId!;
      const Tags = Array.from({ length: 49 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      const run = await c.ec2.send(
        new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1, TagSpecifications: [{ ResourceType: 'instance', Tags }] }),
      );
      const id = run.Instances![0]!.InstanceId!;
      await tagInstance('us-east-1', id, 'percent', '10');
      await expect(tagInstance('us-east-1', id, 'phase', 'solve')).resolves.toBeUndefined();
      const tags = await c.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [id] }] }));
      expect(tags.Tags?.find((t) => t.Key === 'percent')?.Value).toBe('10');
      expect(tags.Tags?.some((t) => t.Key === 'phase')).toBe(false);
    } finally {
      c.destroy();
    }
  });

  it('an on-demand instance records the table\'s price; one the table does not know records none', async () => {
    const warn = () => undefined;
    expect(await billingFacts(imds('on-demand'), 'us-east-1', 'c5.large', warn)).toMatchObject({ lifecycle: 'on-demand', pricePerHour: 0.085, priceSource: expect.stringMatching(/on-demand price table/) });
    const unknown = await billingFacts(imds(undefined), 'us-east-1', 'x9.huge', warn);
    expect(unknown).toMatchObject({ lifecycle: 'on-demand' });
    expect(unknown).not.toHaveProperty('pricePerHour');
  });

  it('a Spot instance records the Spot price of its type in its zone', async () => {
    const warnings: string[] = [];
    const f = await billingFacts(imds('spot'), 'us-east-1', 'c5.large', (_e, what) => warnings.push(what));
    expect(warnings).toEqual([]);
    // moto answers every Spot price as 0.00001 USD/hour.
    expect(f).toMatchObject({ lifecycle: 'spot', pricePerHour: 0.00001, priceSource: 'spot price us-east-1a' });
  });
});
