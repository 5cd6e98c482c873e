// The instance type catalogue of a region and the types offered in each zone, as the resize ranking
// needs them: read from EC2 once an hour per process (thousands of types; a 500-target plan must not
// read them 500 times), priced from the process's price list.
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { RDSClient } from '@aws-sdk/client-rds';
import { describeTypes, typesOfferedIn, type TypeInfo } from '@/lib/adapters/aws/ec2';
import { ec2TypeOfClass, orderableClasses } from '@/lib/adapters/aws/rds';
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

/**
 * What the ranking needs for an RDS DB instance: the classes RDS offers for its PostgreSQL version in its
 * zone, each with its EC2 twin's vCPU and memory (db.m6i.large runs on m6i.large), priced from the price
 * list's db.* entries (twice for a Multi-AZ instance, which runs a standby of the class). RDS picks the
 * hardware: no architecture, ENA or virtualization stands between an instance and a class.
 */
export async function rdsCatalogueFor(
  ec2: EC2Client,
  rds: RDSClient,
  region: string,
  zone: string,
  engineVersion: string,
  opts: { endpoint?: string; prices?: PriceList; multiAz?: boolean } = {},
): Promise<Catalogue & { prices: PriceList }> {
  const prices = opts.prices ?? priceList();
  const [twins, offered] = await Promise.all([
    typesIn(ec2, region, opts.endpoint),
    remembered(`rds ${zone} ${engineVersion} ${opts.endpoint ?? ''}`, () => orderableClasses(rds, engineVersion, zone)),
  ]);
  const types = new Map<string, TypeInfo>();
  for (const name of offered) {
    const twin = twins.get(ec2TypeOfClass(name));
    if (twin) types.set(name, { ...twin, name, architectures: [RDS_ARCHITECTURE], virtualization: ['hvm'], ena: 'supported' });
  }
  const factor = opts.multiAz ? 2 : 1;
  return {
    types,
    offered,
    noun: 'an RDS class for PostgreSQL',
    perHour: (name) => {
      const p = prices.perHour(region, name);
      return p === null ? null : Math.round(p * factor * 10000) / 10000;
    },
    prices,
  };
}

/** What an RDS instance's architecture is to the ranking: any class RDS offers runs it. */
export const RDS_ARCHITECTURE = 'rds';
