// The instance type catalogue of a region and the types offered in each zone, as the resize ranking
// needs them: read from EC2 once an hour per process (thousands of types; a 500-target plan must not
// read them 500 times), priced from the process's price list.
import type { EC2Client } from '@aws-sdk/client-ec2';
import { describeTypes, typesOfferedIn, type TypeInfo } from '@/lib/adapters/aws/ec2';
import type { Catalogue } from './rank';
import { priceList, type PriceList } from './prices';

export const CATALOGUE_TTL_MS = 60 * 60 * 1000;

const cache = new Map<string, { at: number; value: Promise<unknown> }>();

function remembered<T>(key: string, read: () => Promise<T>): Promise<T> {
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < CATALOGUE_TTL_MS) return hit.value as Promise<T>;
  const value = read();
  cache.set(key, { at: Date.now(), value });
  // A failed read is not kept: the next plan asks again.
  value.catch(() => {
    if (cache.get(key)?.value === value) cache.delete(key);
  });
  return value;
}

/** Forgets what was read (a test that changes the lab's catalogue, say). */
export function forgetCatalogues(): void {
  cache.clear();
}

/** The region's types by name. `endpoint` keys the cache with the client's (the lab and AWS differ). */
export function typesIn(client: EC2Client, region: string, endpoint = ''): Promise<Map<string, TypeInfo>> {
  return remembered(`types ${region} ${endpoint}`, async () => new Map((await describeTypes(client)).map((t) => [t.name, t])));
}

export function offeredIn(client: EC2Client, zone: string, endpoint = ''): Promise<Set<string>> {
  return remembered(`offered ${zone} ${endpoint}`, () => typesOfferedIn(client, zone));
}

/** What the ranking needs for an instance in this region and zone. */
export async function catalogueFor(
  client: EC2Client,
  region: string,
  zone: string,
  opts: { endpoint?: string; prices?: PriceList } = {},
): Promise<Catalogue & { prices: PriceList }> {
  const prices = opts.prices ?? priceList();
  const [types, offered] = await Promise.all([typesIn(client, region, opts.endpoint), offeredIn(client, zone, opts.endpoint)]);
  return { types, offered, perHour: (name) => prices.perHour(region, name), prices };
}
