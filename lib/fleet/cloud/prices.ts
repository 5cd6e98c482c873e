// What an EC2 instance type costs per hour: from the AWS Price List Query API when PGHERD_PRICE_SOURCE
// is "aws" (read once per region and kept for PRICES_TTL_MS), else from a dated price file: the one
// pgherd ships (prices/ec2-on-demand.json: the common families in the main regions) or one the user
// points to (PGHERD_PRICE_FILE, same format). Every figure shown says its source and date.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { pricingClient } from '@/lib/adapters/aws/config';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import { onDemandLinuxPrices, onDemandRdsPostgresPrices, type OnDemandPrices } from '@/lib/adapters/aws/pricing';
import shipped from './prices/ec2-on-demand.json';
import { setting } from '@/lib/settings/settings';

/** Hours in a month, as AWS's own calculator counts them (365 × 24 / 12). */
export const HOURS_PER_MONTH = 730;

const priceFileSchema = z
  .object({
    source: z.string().min(1).max(200),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD'),
    currency: z.literal('USD'),
    note: z.string().max(2000).optional(),
    regions: z.record(z.string(), z.record(z.string(), z.number().positive())),
  })
  .strict()
  .superRefine((f, ctx) => {
    // Named keys, so that the message says which one is wrong.
    for (const [region, types] of Object.entries(f.regions)) {
      if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
        ctx.addIssue({ code: 'custom', path: ['regions', region], message: 'not a region such as eu-west-1' });
      for (const type of Object.keys(types))
        if (!/^(db\.)?[a-z0-9-]+\.[a-z0-9-]+$/.test(type))
          ctx.addIssue({ code: 'custom', path: ['regions', region, type], message: 'not an instance type such as m6i.large' });
    }
  });

export interface PriceList {
  /** Where the prices come from, and as of when: shown beside every figure. */
  source: string;
  date: string;
  currency: 'USD';
  /** USD per hour, or null where the list has no price for the type in the region. */
  perHour(region: string, instanceType: string): number | null;
}

function fromFile(data: z.infer<typeof priceFileSchema>, source: string): PriceList {
  const regions = new Map(Object.entries(data.regions).map(([r, types]) => [r, new Map(Object.entries(types))]));
  return {
    source,
    date: data.date,
    currency: 'USD',
    perHour: (region, type) => regions.get(region)?.get(type) ?? null,
  };
}

/** A price file's content, checked; a bad one says what is wrong. */
export function parsePriceFile(raw: unknown, name: string): PriceList {
  const r = priceFileSchema.safeParse(raw);
  if (!r.success) throw new Error(`${name}: ${r.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`).join('; ')}`);
  return fromFile(r.data, r.data.source === shipped.source ? r.data.source : `${r.data.source} (${name})`);
}

let cached: { key: string; list: PriceList } | null = null;

/** The price list this process uses: PGHERD_PRICE_FILE when set (read once), else the shipped one. */
export function priceList(env: Record<string, string | undefined> = process.env): PriceList {
  const file = setting('PGHERD_PRICE_FILE', env) ?? '';
  if (cached?.key === file) return cached.list;
  let list: PriceList;
  if (file) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(/* turbopackIgnore: true */ file, 'utf8'));
    } catch (err) {
      throw new Error(`PGHERD_PRICE_FILE ${file}: ${(err as Error).message}`);
    }
    list = parsePriceFile(raw, file);
  } else {
    list = parsePriceFile(shipped, 'the shipped price file');
  }
  cached = { key: file, list };
  return list;
}

/** How long prices read from the Price List API are used before they are read again. */
export const PRICES_TTL_MS = 12 * 60 * 60 * 1000;

const apiPrices = new Map<string, { at: number; value: Promise<OnDemandPrices> }>();

/** Forgets prices read from the API (a test that changes the lab's). */
export function forgetApiPrices(): void {
  apiPrices.clear();
}

function readApi(region: string, read: (region: string) => Promise<OnDemandPrices>): Promise<OnDemandPrices> {
  const hit = apiPrices.get(region);
  if (hit && Date.now() - hit.at < PRICES_TTL_MS) return hit.value;
  const value = read(region);
  apiPrices.set(region, { at: Date.now(), value });
  // A failed read is not kept: the next plan asks again.
  value.catch(() => {
    if (apiPrices.get(region)?.value === value) apiPrices.delete(region);
  });
  return value;
}

/** A region's EC2 types and RDS for PostgreSQL classes (db.*), read together. */
async function readBoth(region: string): Promise<OnDemandPrices> {
  const [ec2, rds] = await Promise.all([onDemandLinuxPrices(pricingClient(), region), onDemandRdsPostgresPrices(pricingClient(), region)]);
  const days = [ec2.published, rds.published].filter((d): d is string => d !== null).sort();
  return { perHour: new Map([...ec2.perHour, ...rds.perHour]), published: days.at(-1) ?? null };
}

/**
 * The prices for these regions: the Price List API's when PGHERD_PRICE_SOURCE=aws (a region whose read
 * fails takes the file's, and the source says so, with the AWS error), else the file's.
 */
export async function priceListFor(
  regions: string[],
  env: Record<string, string | undefined> = process.env,
  read: (region: string) => Promise<OnDemandPrices> = readBoth,
): Promise<PriceList> {
  const file = priceList(env);
  if (setting('PGHERD_PRICE_SOURCE', env) === 'file') return file;
  const got = new Map<string, OnDemandPrices>();
  const failed: string[] = [];
  await Promise.all(
    [...new Set(regions)].map(async (region) => {
      try {
        got.set(region, await readApi(region, read));
      } catch (err) {
        failed.push(`${region} (${awsErrorText(err)})`);
      }
    }),
  );
  const published = [...got.values()]
    .map((p) => p.published)
    .filter((d): d is string => d !== null)
    .sort()
    .at(-1);
  const api = 'the AWS Price List Query API (on-demand, Linux)';
  const fallback = failed.length ? `${file.source} as of ${file.date} for ${failed.sort().join(', ')}` : '';
  return {
    source: got.size
      ? fallback
        ? `${api}; ${fallback}`
        : api
      : `${file.source}: the AWS Price List Query API failed for ${failed.sort().join(', ')}`,
    date: got.size ? (published ?? new Date().toISOString().slice(0, 10)) : file.date,
    currency: 'USD',
    perHour: (region, type) => {
      const p = got.get(region);
      return p ? (p.perHour.get(type) ?? null) : file.perHour(region, type);
    },
  };
}

/** Per hour and per month, rounded as shown (null: no price known). */
export function cost(perHour: number | null): { perHour: number | null; perMonth: number | null } {
  return { perHour, perMonth: perHour === null ? null : Math.round(perHour * HOURS_PER_MONTH * 100) / 100 };
}

const dollars = (v: number) => `$${v.toFixed(2)}`;

/** A plan's cost total in one line: what the targets cost a month now and after, and the change. */
export function costTotalText(t: { nowPerHour: number; afterPerHour: number; targets: number; unpriced: number }): string {
  const month = (h: number) => h * HOURS_PER_MONTH;
  if (!t.targets)
    return `unknown: the price list has no price for the types of ${t.unpriced === 1 ? 'the target' : `the ${t.unpriced} targets`}`;
  const priced = `${t.targets} target${t.targets === 1 ? '' : 's'}`;
  const left = t.unpriced ? `; ${t.unpriced} more with no price, not counted` : '';
  return `${priced}: ${dollars(month(t.nowPerHour))}/month now, ${dollars(month(t.afterPerHour))}/month after (${signedDollars(month(t.afterPerHour - t.nowPerHour))}/month, ${signedDollars(t.afterPerHour - t.nowPerHour)}/h)${left}`;
}

/** A price an hour, and a month of it ("$0.1920/h, $140.16/month"). */
export const priceLine = (perHour: number | null): string =>
  perHour === null ? 'price unknown' : `$${perHour.toFixed(4)}/h, $${(perHour * HOURS_PER_MONTH).toFixed(2)}/month`;

/** A difference in dollars, with its sign ("+$12.40", "-$3.00"). */
export const signedDollars = (v: number): string => `${v < 0 ? '-' : '+'}$${Math.abs(v).toFixed(2)}`;
