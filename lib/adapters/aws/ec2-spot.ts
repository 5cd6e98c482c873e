// EC2's spot prices: the latest price of each instance type in a zone, from the spot price history
// (DescribeSpotPriceHistory, Linux/UNIX), for choosing a spot replica's type beside on-demand prices; and
// whether EC2 itself has an interruption pending for an instance (its spot request's status).
import {
  DescribeInstancesCommand,
  DescribeSpotInstanceRequestsCommand,
  DescribeSpotPriceHistoryCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';

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

/** What EC2 does to a spot instance it takes back (its instance-action). */
export type SpotAction = 'terminate' | 'stop' | 'hibernate';

/** What EC2 itself says of an instance: whether it is spot capacity, and the interruption it has pending. */
export interface SpotStanding {
  /** EC2 has no such instance. */
  found: boolean;
  /** InstanceLifecycle: 'spot', 'scheduled', 'capacity-block', or null for on-demand. */
  lifecycle: string | null;
  /** The interruption EC2 marked its spot request for; null while none is pending. */
  pending: SpotAction | null;
  /** The spot request's status code as EC2 says it (null: no spot request). */
  status: string | null;
}

/**
 * EC2 marks a spot request `marked-for-termination` (or -stop, -hibernation) at the moment it writes the
 * interruption warning to the instance's metadata: the same fact, asked of EC2 instead of the host.
 */
const PENDING: Record<string, SpotAction> = {
  'marked-for-termination': 'terminate',
  'marked-for-stop': 'stop',
  'marked-for-hibernation': 'hibernate',
};

export async function spotStanding(client: EC2Client, instanceId: string): Promise<SpotStanding> {
  const d = await client.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [instanceId] }] }));
  const i = (d.Reservations ?? []).flatMap((r) => r.Instances ?? []).find((x) => x.InstanceId === instanceId);
  if (!i) return { found: false, lifecycle: null, pending: null, status: null };
  const lifecycle = i.InstanceLifecycle ?? null;
  if (lifecycle !== 'spot') return { found: true, lifecycle, pending: null, status: null };
  const r = await client.send(new DescribeSpotInstanceRequestsCommand({ Filters: [{ Name: 'instance-id', Values: [instanceId] }] }));
  const req = (r.SpotInstanceRequests ?? []).find((x) => x.InstanceId === instanceId);
  const status = req?.Status?.Code ?? null;
  return { found: true, lifecycle, pending: status ? (PENDING[status] ?? null) : null, status };
}
