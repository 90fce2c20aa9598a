/**
 * Folder common/src/cost: what a job costs, as pure arithmetic over the instance and task records
 * (billing.ts: how AWS bills; spend.ts: a job's spend, busy fraction and estimate to finish;
 * prices.ts: the shipped on-demand price table). No I/O here.
 *
 * How AWS bills a Linux instance and its EBS volume, per second.
 *
 * EC2 Linux on-demand and Spot: per second, with a 60-second minimum each time an instance
 * starts running (https://aws.amazon.com/ec2/pricing/on-demand/ "Per-second billing").
 * EBS: per GB-month provisioned, billed per second (60-second minimum too), a month taken as
 * AWS's 730 hours (https://aws.amazon.com/ebs/pricing/, "pricing examples").
 */

/** AWS bills at least this much for each run of an instance. */
export const MIN_BILLED_SECONDS = 60;
/** Hours in AWS's billing month (the figure its pricing examples use). */
export const HOURS_PER_MONTH = 730;
/** gp3 storage, USD per GB-month, us-east-1 (the volume type gq's launch templates ask for). */
export const GP3_USD_PER_GB_MONTH = 0.08;

/** Seconds AWS bills for an instance that ran from `startMs` to `endMs`: whole seconds, at least 60. */
export function billedSeconds(startMs: number, endMs: number): number {
  const ran = Math.max(0, Math.ceil((endMs - startMs) / 1000));
  return Math.max(MIN_BILLED_SECONDS, ran);
}

/** USD for `seconds` of an instance at `pricePerHour`. */
export function instanceCharge(seconds: number, pricePerHour: number): number {
  return (seconds * pricePerHour) / 3600;
}

/** USD for a volume of `gb` kept `seconds` (at least 60) at `usdPerGbMonth`. */
export function volumeCharge(gb: number, seconds: number, usdPerGbMonth = GP3_USD_PER_GB_MONTH): number {
  if (gb <= 0) return 0;
  return (gb * usdPerGbMonth * Math.max(MIN_BILLED_SECONDS, seconds)) / (HOURS_PER_MONTH * 3600);
}

/** USD per hour of a volume of `gb` (0 for none): what it adds to its instance's hourly price. */
export function volumeHourly(gb: number, usdPerGbMonth = GP3_USD_PER_GB_MONTH): number {
  return gb > 0 ? (gb * usdPerGbMonth) / HOURS_PER_MONTH : 0;
}

/** A sum of money rounded to the cent (for display and for the cap's comparison). */
export function cents(usd: number): number {
  return Math.round(usd * 100 + Number.EPSILON) / 100;
}

/** "$12.34" (or "$0.004" below a cent, so that a tiny spend does not read as nothing). */
export function formatUsd(usd: number): string {
  if (usd > 0 && usd < 0.01) return `$${usd.toFixed(3)}`;
  return `$${cents(usd).toFixed(2)}`;
}
