/**
 * The AWS Price List API's answers (Pricing GetProducts, service AmazonEC2) as gq's price table:
 * the filters that pick Linux on-demand shared-tenancy instances without pre-installed software,
 * and the hourly USD price of each product's on-demand term. Pure: `gq prices update` sends the
 * requests. Filters and fields: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html
 */

/** GetProducts filters for the Linux on-demand price of every instance type in `region`. */
export function linuxOnDemandFilters(region: string): { Type: 'TERM_MATCH'; Field: string; Value: string }[] {
  return [
    ['regionCode', region],
    ['operatingSystem', 'Linux'],
    ['tenancy', 'Shared'],
    ['preInstalledSw', 'NA'],
    ['capacitystatus', 'Used'],
    ['licenseModel', 'No License required'],
  ].map(([Field, Value]) => ({ Type: 'TERM_MATCH' as const, Field: Field!, Value: Value! }));
}

interface PriceListProduct {
  product?: { attributes?: Record<string, string> };
  terms?: { OnDemand?: Record<string, { priceDimensions?: Record<string, { unit?: string; pricePerUnit?: Record<string, string> }> }> };
}

/** instance type → USD/hour from GetProducts' PriceList items (JSON texts); others are skipped. */
export function pricesFromPriceList(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const text of items) {
    let p: PriceListProduct;
    try {
      p = JSON.parse(text) as PriceListProduct;
    } catch {
      continue;
    }
    const type = p.product?.attributes?.instanceType;
    if (!type) continue;
    for (const term of Object.values(p.terms?.OnDemand ?? {})) {
      for (const dim of Object.values(term.priceDimensions ?? {})) {
        const usd = Number(dim.pricePerUnit?.USD);
        if (dim.unit === 'Hrs' && Number.isFinite(usd) && usd > 0) out[type] = usd;
      }
    }
  }
  return out;
}
