import { describe, expect, it } from 'vitest';
import { onDemandPrice } from '@/lib/adapters/aws/pricing';
import { costTotalText, forgetApiPrices, priceListFor } from './prices';

const doc = (type: string, usd: string) => ({
  product: { attributes: { instanceType: type } },
  terms: { OnDemand: { 'X.JRTCKXETXF': { priceDimensions: { 'X.JRTCKXETXF.6YS6EN2CT7': { pricePerUnit: { USD: usd } } } } } },
});

describe('a Price List product document', () => {
  it('gives its type and on-demand price per hour; no price, zero or garbage gives none', () => {
    expect(onDemandPrice(doc('m6i.large', '0.1070000000'))).toEqual({ type: 'm6i.large', perHour: 0.107 });
    expect(onDemandPrice(doc('m6i.large', '0.0000000000'))).toBeNull();
    expect(onDemandPrice(doc('m6i.large', 'abc'))).toBeNull();
    expect(onDemandPrice({ product: { attributes: {} } })).toBeNull();
    expect(onDemandPrice({})).toBeNull();
  });
});

describe('priceListFor', () => {
  const env = { PGHERD_PRICE_SOURCE: 'aws' };
  const prices = (m: Record<string, number>, published: string | null = '2026-11-20') => ({
    perHour: new Map(Object.entries(m)),
    published,
  });

  it('reads each region once while kept, and takes the file for a region whose read fails, saying so', async () => {
    forgetApiPrices();
    let reads = 0;
    const read = async (region: string) => {
      reads++;
      if (region === 'us-west-2') throw Object.assign(new Error('not allowed'), { name: 'AccessDeniedException' });
      return prices({ 'm6i.large': 0.2 });
    };
    const list = await priceListFor(['eu-west-1', 'eu-west-1', 'us-west-2'], env, read);
    expect(list.source).toMatch(
      /^the AWS Price List Query API \(on-demand, Linux\); .+ as of \d{4}-\d\d-\d\d for us-west-2 \(AccessDeniedException: not allowed\)$/,
    );
    expect(list.date).toBe('2026-11-20');
    expect(list.perHour('eu-west-1', 'm6i.large')).toBe(0.2);
    expect(list.perHour('eu-west-1', 'm6i.huge')).toBeNull();
    expect(list.perHour('us-west-2', 'm6i.large')).toBeGreaterThan(0); // the file's
    await priceListFor(['eu-west-1'], env, read);
    expect(reads).toBe(2); // eu-west-1 kept; the failed region is not
    forgetApiPrices();
  });

  it('is the file unless asked for the API; another source is refused', async () => {
    const file = await priceListFor(['eu-west-1'], {}, () => Promise.reject(new Error('never asked')));
    expect(file.date).toMatch(/^\d{4}-\d\d-\d\d$/);
    await expect(priceListFor(['eu-west-1'], { PGHERD_PRICE_SOURCE: 'cheap' })).rejects.toThrow(
      'PGHERD_PRICE_SOURCE must be "file" or "aws" (got "cheap")',
    );
  });
});

describe('costTotalText', () => {
  it('adds up what is priced, says what is not, and never shows $0.00 for nothing known', () => {
    expect(costTotalText({ nowPerHour: 0.2, afterPerHour: 0.4, targets: 2, unpriced: 1 })).toBe(
      '2 targets: $146.00/month now, $292.00/month after (+$146.00/month, +$0.20/h); 1 more with no price, not counted',
    );
    expect(costTotalText({ nowPerHour: 0, afterPerHour: 0, targets: 0, unpriced: 1 })).toBe(
      'unknown: the price list has no price for the types of the target',
    );
  });
});
