/**
 * The price this EC2 instance runs at: Spot or on-demand from the metadata service
 * (instance-life-cycle), then the on-demand price from gq's price table, or the current Spot
 * price of its type in its Availability Zone from DescribeSpotPriceHistory. Best effort: an
 * unknown price is recorded as unknown, and the figures say so.
 */
import { readFileSync } from 'node:fs';
import { DescribeSpotPriceHistoryCommand, EC2Client } from '@aws-sdk/client-ec2';
import { installCallLog } from '@gq/common/aws/index';
import { onDemandPrice, shippedPriceTable } from '@gq/common';
import type { BillingFacts } from '../usage.js';
import type { Imds } from './imds.js';

/**
 * The current Spot price: with StartTime = EndTime = now, EC2 answers the price in effect then
 * ("the last price change before the start time, which is the effective price as of the start
 * time", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html).
 */
export async function spotPrice(region: string, az: string, instanceType: string, now = new Date()): Promise<number | undefined> {
  const ec2 = new EC2Client({ region });
  installCallLog(ec2, 'EC2'); // tests only (GQ_TEST_AWS_CALL_LOG)
  try {
    const r = await ec2.send(
      new DescribeSpotPriceHistoryCommand({
        AvailabilityZone: az,
        InstanceTypes: [instanceType as never],
        ProductDescriptions: ['Linux/UNIX (Amazon VPC)', 'Linux/UNIX'],
        StartTime: now,
        EndTime: now,
      }),
    );
    const newest = (r.SpotPriceHistory ?? []).filter((p) => p.AvailabilityZone === az).sort((a, b) => (b.Timestamp?.getTime() ?? 0) - (a.Timestamp?.getTime() ?? 0))[0];
    const price = Number(newest?.SpotPrice);
    return Number.isFinite(price) && price >= 0 && newest ? price : undefined;
  } finally {
    ec2.destroy();
  }
}

/** When the kernel booted (/proc/stat btime), epoch ms; undefined off Linux. */
function kernelBootMs(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** A boot earlier than this before the agent started is not this instance's launch (a host, a reboot). */
const LAUNCH_TO_AGENT_MAX_MS = 30 * 60_000;

export async function billingFacts(imds: Imds, region: string, instanceType: string, warn: (err: unknown, what: string) => void): Promise<BillingFacts> {
  const boot = kernelBootMs();
  const launchedAt = boot !== undefined && Date.now() - boot < LAUNCH_TO_AGENT_MAX_MS ? boot : undefined;
  const lifecycle = (await imds.get('meta-data/instance-life-cycle').catch(() => undefined))?.trim() === 'spot' ? 'spot' : 'on-demand';
  const base = { lifecycle, ...(launchedAt !== undefined ? { launchedAt } : {}) } as const;
  if (lifecycle === 'spot') {
    try {
      const az = await imds.availabilityZone();
      const price = await spotPrice(region, az, instanceType);
      if (price !== undefined) return { ...base, pricePerHour: price, priceSource: `spot price ${az}` };
    } catch (e) {
      warn(e, 'could not read the Spot price; the cost figures say "price unknown" for this instance');
    }
    return base;
  }
  const table = shippedPriceTable();
  const price = onDemandPrice(table, region, instanceType);
  return price === undefined ? base : { ...base, pricePerHour: price, priceSource: `on-demand price table ${table.asOf}` };
}
