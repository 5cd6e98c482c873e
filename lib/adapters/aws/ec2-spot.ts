// EC2's spot prices: the latest price of each instance type in a zone, from the spot price history
// (DescribeSpotPriceHistory, Linux/UNIX), for choosing a spot replica's type beside on-demand prices.
import { DescribeSpotPriceHistoryCommand, type EC2Client } from '@aws-sdk/client-ec2';

export interface SpotPrice {
  instanceType: string;
  availabilityZone: string;
  /** US dollars an hour. */
  perHour: number;
  /** When EC2 set that price. */
  at: Date;
}

/** The latest spot price of each of `types` in `availabilityZone` (a type EC2 has no price for is absent). */
export async function latestSpotPrices(client: EC2Client, availabilityZone: string, types: string[]): Promise<Map<string, SpotPrice>> {
  const out = new Map<string, SpotPrice>();
  if (!types.length) return out;
  let token: string | undefined;
  // StartTime now: only the price in effect, one per type and zone (the history's newest entry).
  const now = new Date();
  do {
    const page = await client.send(
      new DescribeSpotPriceHistoryCommand({
        AvailabilityZone: availabilityZone,
        InstanceTypes: types as never[],
        ProductDescriptions: ['Linux/UNIX'],
        StartTime: now,
        NextToken: token,
      }),
    );
    for (const p of page.SpotPriceHistory ?? []) {
      const price = Number(p.SpotPrice);
      if (!p.InstanceType || !Number.isFinite(price)) continue;
      const at = p.Timestamp ?? now;
      const seen = out.get(p.InstanceType);
      if (!seen || seen.at < at)
        out.set(p.InstanceType, {
          instanceType: p.InstanceType,
          availabilityZone: p.AvailabilityZone ?? availabilityZone,
          perHour: price,
          at,
        });
    }
    token = page.NextToken || undefined;
  } while (token);
  return out;
}
