import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { linuxOnDemandFilters, loadConfig, onDemandPrice, pricesFromPriceList, UserError } from '@gq/common';
import { fetchRegionPrices, runPricesUpdate } from '../src/commands/prices.js';
import { priceTable } from '../src/cost-report.js';

/** A GetProducts PriceList item as AWS answers it (trimmed to the fields gq reads). */
const product = (type: string, usd: string, unit = 'Hrs') =>
  JSON.stringify({
    product: { productFamily: 'Compute Instance', attributes: { instanceType: type, operatingSystem: 'Linux', tenancy: 'Shared', regionCode: 'eu-west-1' } },
    terms: { OnDemand: { 'SKU.JRTCKXETXF': { priceDimensions: { 'SKU.JRTCKXETXF.6YS6EN2CT7': { unit, pricePerUnit: { USD: usd } } } } } },
  });

/** A Pricing client that answers canned pages and records the requests. */
function cannedClient(pages: { PriceList: string[]; NextToken?: string }[] | Error) {
  const sent: Record<string, unknown>[] = [];
  return {
    sent,
    send: async (cmd: { input: Record<string, unknown> }) => {
      sent.push(cmd.input);
      if (pages instanceof Error) throw pages;
      return pages[sent.length - 1]!;
    },
  };
}

describe('the AWS Price List API as gq\'s price table', () => {
  const saved = process.env.XDG_CONFIG_HOME;
  afterEach(() => {
    process.env.XDG_CONFIG_HOME = saved;
  });

  it('asks for Linux on-demand, shared tenancy, no pre-installed software, in the region', () => {
    const f = Object.fromEntries(linuxOnDemandFilters('eu-west-1').map((x) => [x.Field, x.Value]));
    expect(f).toEqual({ regionCode: 'eu-west-1', operatingSystem: 'Linux', tenancy: 'Shared', preInstalledSw: 'NA', capacitystatus: 'Used', licenseModel: 'No License required' });
  });
  it('reads the hourly USD of each product, skipping what is not an hourly price', () => {
    expect(pricesFromPriceList([product('c5.large', '0.0960000000'), product('c5.xlarge', '0', 'Hrs'), product('m5.large', '3.1', 'Quantity'), 'not json'])).toEqual({ 'c5.large': 0.096 });
  });
  it('follows the pages, and writes the region over the shipped table', async () => {
    const home = mkdtempSync(join(tmpdir(), 'gq-prices-'));
    process.env.XDG_CONFIG_HOME = home;
    const client = cannedClient([{ PriceList: [product('c5.large', '0.1')], NextToken: 't1' }, { PriceList: [product('z9.huge', '12.5')] }]);
    const out: string[] = [];
    const ctx = { config: loadConfig({ backend: 'aws', region: 'eu-west-1' }, { XDG_CONFIG_HOME: home }), io: { out: (l: string) => out.push(l), err: () => undefined }, log: { debug() {}, info() {}, warn() {} } } as never;
    expect(await runPricesUpdate(ctx, { json: true }, client)).toBe(0);
    expect(client.sent.map((s) => s.NextToken)).toEqual([undefined, 't1']);
    expect(client.sent[0]).toMatchObject({ ServiceCode: 'AmazonEC2', MaxResults: 100 });
    const file = JSON.parse(out[0]!).file as string;
    expect(JSON.parse(readFileSync(file, 'utf8')).regions['eu-west-1']).toEqual({ 'c5.large': 0.1, 'z9.huge': 12.5 });
    const table = priceTable(file);
    expect(onDemandPrice(table, 'eu-west-1', 'z9.huge')).toBe(12.5);
    expect(onDemandPrice(table, 'us-east-1', 'c5.large')).toBe(0.085); // other regions stay as shipped
  });
  it('says plainly when the user may not read the Price List API', async () => {
    const denied = Object.assign(new Error('User is not authorized to perform: pricing:GetProducts'), { name: 'AccessDeniedException' });
    const e = await fetchRegionPrices(cannedClient(denied), 'us-east-1').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toMatch(/pricing:GetProducts/);
  });
});
