// EC2 on-demand prices from the AWS Price List Query API (GetProducts): Linux, shared tenancy, no
// pre-installed software, the region's every instance type, page by page. Each product comes as a
// JSON document; its on-demand price per hour is the one price dimension of its one offer term.
import { GetProductsCommand, type PricingClient } from '@aws-sdk/client-pricing';

export interface OnDemandPrices {
  /** USD per hour by instance type. */
  perHour: Map<string, number>;
  /** When AWS published the offers (YYYY-MM-DD), the latest of them; null when none said. */
  published: string | null;
}

interface Product {
  product?: { attributes?: { instanceType?: string } };
  terms?: { OnDemand?: Record<string, { priceDimensions?: Record<string, { pricePerUnit?: { USD?: string } }> }> };
  publicationDate?: string;
}

/** The on-demand price in one product document, or null (no price, or not a positive number). */
export function onDemandPrice(doc: Product): { type: string; perHour: number } | null {
  const type = doc.product?.attributes?.instanceType;
  const offer = Object.values(doc.terms?.OnDemand ?? {})[0];
  const usd = Object.values(offer?.priceDimensions ?? {})[0]?.pricePerUnit?.USD;
  const perHour = Number(usd);
  if (!type || !usd || !Number.isFinite(perHour) || perHour <= 0) return null;
  return { type, perHour };
}

/** At most this many pages (100 products each): a region has about a thousand types. */
const MAX_PAGES = 100;

export function onDemandLinuxPrices(client: PricingClient, region: string, signal?: AbortSignal): Promise<OnDemandPrices> {
  return onDemandPrices(
    client,
    'AmazonEC2',
    [
      ['regionCode', region],
      ['operatingSystem', 'Linux'],
      ['tenancy', 'Shared'],
      ['preInstalledSw', 'NA'],
      ['capacitystatus', 'Used'],
      ['licenseModel', 'No License required'],
    ],
    signal,
  );
}

/** RDS for PostgreSQL's on-demand prices, Single-AZ (a Multi-AZ instance costs twice its class's), by class (db.m6i.large). */
export function onDemandRdsPostgresPrices(client: PricingClient, region: string, signal?: AbortSignal): Promise<OnDemandPrices> {
  return onDemandPrices(
    client,
    'AmazonRDS',
    [
      ['regionCode', region],
      ['databaseEngine', 'PostgreSQL'],
      ['deploymentOption', 'Single-AZ'],
    ],
    signal,
  );
}

async function onDemandPrices(
  client: PricingClient,
  service: 'AmazonEC2' | 'AmazonRDS',
  filters: [string, string][],
  signal?: AbortSignal,
): Promise<OnDemandPrices> {
  const perHour = new Map<string, number>();
  let published: string | null = null;
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await client.send(
      new GetProductsCommand({
        ServiceCode: service,
        FormatVersion: 'aws_v1',
        MaxResults: 100,
        NextToken: token,
        Filters: filters.map(([Field, Value]) => ({ Type: 'TERM_MATCH', Field, Value })),
      }),
      { abortSignal: signal },
    );
    for (const item of r.PriceList ?? []) {
      const doc = JSON.parse(String(item)) as Product;
      const p = onDemandPrice(doc);
      if (p) perHour.set(p.type, p.perHour);
      const day = doc.publicationDate?.slice(0, 10);
      if (day && /^\d{4}-\d{2}-\d{2}$/.test(day) && (!published || day > published)) published = day;
    }
    token = r.NextToken ?? undefined;
    if (!token) break;
  }
  return { perHour, published };
}
