/**
 * The on-demand price table: Linux, shared tenancy, USD per hour, per region and instance type.
 * gq ships one (on-demand-prices.json, with its date and source); `gq prices update` writes a
 * fresher one from the AWS Price List API, which is preferred when present. A type the table does
 * not list has no price: the figures then say "price unknown", never a guess.
 */
import * as z from 'zod';
import shipped from './on-demand-prices.json' with { type: 'json' };

export const priceTableSchema = z.object({
  source: z.string(),
  /** When the prices were taken (ISO date or month). */
  asOf: z.string(),
  regions: z.record(z.string(), z.record(z.string(), z.number().nonnegative())),
});
export type PriceTable = z.infer<typeof priceTableSchema>;

/** The table shipped with this gq. */
export function shippedPriceTable(): PriceTable {
  return priceTableSchema.parse(shipped);
}

/** The on-demand USD/hour of `instanceType` in `region`, or undefined when the table does not know it. */
export function onDemandPrice(table: PriceTable, region: string, instanceType: string): number | undefined {
  return table.regions[region]?.[instanceType];
}

/** A newer table over an older one: the newer's regions replace the older's, the others stay. */
export function mergePriceTables(older: PriceTable, newer: PriceTable): PriceTable {
  return { source: newer.source, asOf: newer.asOf, regions: { ...older.regions, ...newer.regions } };
}
