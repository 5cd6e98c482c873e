// A spot replica's type, chosen from spot prices beside on-demand ones: each candidate with both prices
// and what spot saves a month, cheapest spot first (a type with no spot price comes last, unpriced).
import type { SpotPrice } from '@/lib/adapters/aws/ec2-spot';
import { HOURS_PER_MONTH } from './prices';
import type { TypeChoice } from './rank';

export interface SpotChoice {
  name: string;
  vcpus: number;
  memoryGiB: number;
  onDemandPerHour: number | null;
  spotPerHour: number | null;
  /** On-demand minus spot, a month (730 hours); null when either price is unknown. */
  savesPerMonth: number | null;
}

export function spotChoices(candidates: TypeChoice[], spot: Map<string, SpotPrice>): SpotChoice[] {
  const rows = candidates.map((c) => {
    const s = spot.get(c.name)?.perHour ?? null;
    return {
      name: c.name,
      vcpus: c.vcpus,
      memoryGiB: c.memoryGiB,
      onDemandPerHour: c.perHour,
      spotPerHour: s,
      savesPerMonth: s === null || c.perHour === null ? null : Math.round((c.perHour - s) * HOURS_PER_MONTH * 100) / 100,
    };
  });
  return rows.sort((a, b) => (a.spotPerHour ?? Infinity) - (b.spotPerHour ?? Infinity) || a.name.localeCompare(b.name));
}
