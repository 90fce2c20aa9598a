/**
 * gq prices update: refresh the on-demand price table from the AWS Price List API (Pricing
 * GetProducts, served from us-east-1 whatever the job's region) for the configured region, and
 * keep it beside the config file (cost-report.ts reads it over the shipped table). Needs
 * pricing:GetProducts, which gq's user policy does not grant: without it, a clear error and the
 * shipped table stays in use.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GetProductsCommand, PricingClient } from '@aws-sdk/client-pricing';
import { installCallLog } from '@gq/common/aws/index';
import { linuxOnDemandFilters, mergePriceTables, pricesFromPriceList, UserError, type PriceTable } from '@gq/common';
import type { CommandContext } from '../context.js';
import { priceTable, updatedPricesFile } from '../cost-report.js';

/** The Price List API's endpoint region (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-price-list-query-api.html). */
export const PRICING_REGION = 'us-east-1';

type Sender = Pick<PricingClient, 'send'>;

/** Every Linux on-demand price of `region`, page by page (at most 100 products a page). */
export async function fetchRegionPrices(client: Sender, region: string): Promise<Record<string, number>> {
  const prices: Record<string, number> = {};
  let token: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters: linuxOnDemandFilters(region), FormatVersion: 'aws_v1', MaxResults: 100, NextToken: token }));
    } catch (err) {
      if ((err as { name?: string }).name === 'AccessDeniedException') {
        throw new UserError('Your AWS identity may not read the AWS Price List API (pricing:GetProducts).', {
          hint: 'Ask for pricing:GetProducts (Resource "*"), or keep the price table shipped with gq (gq status says its date).',
          cause: err,
        });
      }
      throw err;
    }
    Object.assign(prices, pricesFromPriceList(page.PriceList ?? []));
    token = page.NextToken;
  } while (token);
  return prices;
}

export async function runPricesUpdate(ctx: CommandContext, a: { json?: boolean }, client?: Sender): Promise<number> {
  const region = ctx.config.region ?? (await (await import('../aws/region.js')).findRegion(ctx.config))?.region;
  if (!region) throw new UserError('No AWS region to fetch prices for.', { hint: 'Give --region, e.g. gq prices update --region eu-west-1.' });
  const own = client ?? new PricingClient({ region: PRICING_REGION, ...(ctx.config.profile ? { profile: ctx.config.profile } : {}) });
  if (!client) installCallLog(own as PricingClient, 'Pricing');
  try {
    const prices = await fetchRegionPrices(own, region);
    if (Object.keys(prices).length === 0) throw new UserError(`The AWS Price List API has no Linux on-demand prices for ${region}.`, { hint: 'Check the region name (e.g. us-east-1).' });
    const fresh: PriceTable = { source: 'AWS Price List API (GetProducts, Linux on-demand, shared tenancy)', asOf: new Date().toISOString().slice(0, 10), regions: { [region]: prices } };
    const file = updatedPricesFile();
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(mergePriceTables(priceTable(file), fresh), null, 1) + '\n');
    if (a.json) ctx.io.out(JSON.stringify({ region, types: Object.keys(prices).length, file }));
    else ctx.io.err(`Prices of ${Object.keys(prices).length} instance types in ${region} saved to ${file}.`);
    return 0;
  } finally {
    if (!client) (own as PricingClient).destroy();
  }
}
