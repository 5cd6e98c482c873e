import { describe, expect, it } from 'vitest';
import { spotChoices } from './spot';

const choice = (name: string, perHour: number | null) => ({ name, vcpus: 2, memoryGiB: 8, perHour, perMonth: null });
const spot = (instanceType: string, perHour: number) =>
  [instanceType, { instanceType, availabilityZone: 'eu-west-1a', perHour, at: new Date() }] as const;

describe('spotChoices', () => {
  it('puts the cheapest spot price first, with what it saves a month; a type without one last', () => {
    const rows = spotChoices(
      [choice('m6i.large', 0.107), choice('m5.large', 0.107), choice('r6i.large', 0.151)],
      new Map([spot('m5.large', 0.035), spot('m6i.large', 0.041)]),
    );
    expect(rows.map((r) => r.name)).toEqual(['m5.large', 'm6i.large', 'r6i.large']);
    expect(rows[0]).toMatchObject({ onDemandPerHour: 0.107, spotPerHour: 0.035, savesPerMonth: 52.56 });
    expect(rows[2]).toMatchObject({ spotPerHour: null, savesPerMonth: null });
  });
});
