/** The price an EC2 instance records: on-demand from the shipped table, Spot from DescribeSpotPriceHistory (through the strict layer, moto). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeAws, startMoto, type Moto } from '../../../test/support/moto.js';
import { billingFacts } from '../src/aws/price.js';
import type { Imds } from '../src/aws/imds.js';

/** The metadata a test instance shows: its life cycle and its Availability Zone. */
const imds = (lifecycle: string | undefined) =>
  ({ get: async (p: string) => (p === 'meta-data/instance-life-cycle' ? lifecycle : undefined), availabilityZone: async () => 'us-east-1a' }) as unknown as Imds;

describeAws('billingFacts (moto)', () => {
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
