/** The instance's own EC2 tags: best effort past EC2's 50 tags per resource (through the strict layer, moto). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DescribeImagesCommand, DescribeTagsCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describeAws, motoClients, startMoto, type Moto } from '../../../test/support/moto.js';
import { tagInstance } from '../src/aws/ec2-tags.js';


describeAws('tagInstance (moto)', () => {
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
});
