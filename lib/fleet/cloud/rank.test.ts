// The ranking of resize targets: every fitting type priced before any is dropped, cheapest first;
// types the instance cannot run refused with the reason; fallbacks checked one by one.
import { describe, expect, it } from 'vitest';
import { instanceType } from '@/lib/testing/cloud';
import { parsePriceFile, priceList } from './prices';
import { rankTypes, type Catalogue, type RankedInstance } from './rank';

const t = instanceType;

const types = [
  t('m6i.large', 2, 8),
  t('m6i.xlarge', 4, 16),
  t('r6i.large', 2, 16),
  t('r6i.xlarge', 4, 32),
  t('m6a.xlarge', 4, 16),
  t('c6i.xlarge', 4, 8),
  t('m7i.xlarge', 4, 16),
  t('t3.xlarge', 4, 16, { burstable: true }),
  t('m6g.xlarge', 4, 16, { architectures: ['arm64'] }),
  t('m5.xlarge', 4, 16, { virtualization: ['hvm'], ena: 'required' }),
  t('x9.weird', 4, 16), // priced nowhere
  t('m6i.metal', 128, 512),
];
const prices = priceList({});
const catalogue = (offered = types.map((x) => x.name)): Catalogue => ({
  types: new Map(types.map((x) => [x.name, x])),
  offered: new Set(offered),
  perHour: (n) => prices.perHour('eu-west-1', n),
});
const inst: RankedInstance = {
  instanceId: 'i-0abc',
  region: 'eu-west-1',
  availabilityZone: 'eu-west-1a',
  instanceType: 'm6i.large',
  architecture: 'x86_64',
  enaSupport: true,
  virtualization: 'hvm',
};

describe('resize targets', () => {
  it('"at least 4 vCPU / 16 GiB": the cheapest that fits first, the next two as fallbacks, burstable and arm64 left out', () => {
    const r = rankTypes(inst, { minVcpus: 4, minMemoryGiB: 16 }, catalogue());
    if (!r.ok) throw new Error(r.reason);
    expect(r.target.name).toBe('m6a.xlarge');
    expect(r.fallbacks.map((f) => f.name)).toEqual(['m5.xlarge', 'm6i.xlarge']);
    // Every fitting type was priced (the unpriced one last, not dropped before pricing).
    expect(r.candidates).toBe(7);
    expect(r.current).toMatchObject({ name: 'm6i.large', perHour: 0.10704, perMonth: 78.14 });
    expect(r.target.perMonth).toBe(Math.round(r.target.perHour! * 730 * 100) / 100);
    // Asked for: burstable types are candidates, and the cheapest.
    const b = rankTypes(inst, { minVcpus: 4, minMemoryGiB: 16, burstable: true }, catalogue());
    expect(b.ok && b.target.name).toBe('t3.xlarge');
  });

  it('a type not offered in the zone is skipped in the ranking and refused by name', () => {
    const offered = types.map((x) => x.name).filter((n) => n !== 'm6a.xlarge');
    const r = rankTypes(inst, { minVcpus: 4, minMemoryGiB: 16 }, catalogue(offered));
    expect(r.ok && r.target.name).toBe('m5.xlarge');
    expect(rankTypes(inst, { instanceType: 'm6a.xlarge' }, catalogue(offered))).toEqual({
      ok: false,
      reason: 'm6a.xlarge is not offered in eu-west-1a',
    });
  });

  it('its own type, named or the cheapest that fits, is the target: nothing to do (the resize says so)', () => {
    const own = rankTypes(inst, { instanceType: 'm6i.large' }, catalogue());
    expect(own).toMatchObject({ ok: true, target: { name: 'm6i.large' }, current: { name: 'm6i.large' }, fallbacks: [] });
    const cheapest = rankTypes(inst, { minVcpus: 2, minMemoryGiB: 8 }, catalogue());
    expect(cheapest.ok && [cheapest.target.name, cheapest.current.name]).toEqual(['m6i.large', 'm6i.large']);
    // A bigger wish: never its own type among the fallbacks (it is the last resort anyway).
    const bigger = rankTypes(inst, { minVcpus: 4, minMemoryGiB: 16 }, catalogue());
    expect(bigger.ok && bigger.fallbacks.map((f) => f.name)).not.toContain('m6i.large');
  });

  it('refuses at planning: another architecture, an unknown type, no type big enough, ENA it lacks', () => {
    const refused = (wish: Parameters<typeof rankTypes>[1], i = inst) => {
      const r = rankTypes(i, wish, catalogue());
      return r.ok ? 'accepted' : r.reason;
    };
    expect(refused({ instanceType: 'm6g.xlarge' })).toBe("m6g.xlarge runs arm64, not x86_64 (the instance's image would not boot)");
    expect(refused({ instanceType: 'm9z.large' })).toBe('m9z.large is not an EC2 instance type in eu-west-1');
    expect(refused({ minVcpus: 256, minMemoryGiB: 16 })).toMatch(
      /^no instance type offered in eu-west-1a has at least 256 vCPU and 16 GiB/,
    );
    expect(refused({ instanceType: 'm6i.xlarge' }, { ...inst, enaSupport: false })).toBe(
      'm6i.xlarge requires ENA, which i-0abc does not have enabled',
    );
  });

  it('checks the fallbacks given: in their order; duplicates, the target, the own type and unrunnable ones refused', () => {
    const r = rankTypes(inst, { instanceType: 'r6i.xlarge', fallbackTypes: ['m6i.xlarge', 'm7i.xlarge'] }, catalogue());
    expect(r.ok && r.fallbacks.map((f) => f.name)).toEqual(['m6i.xlarge', 'm7i.xlarge']);
    const refused = (fallbackTypes: string[]) => {
      const x = rankTypes(inst, { instanceType: 'r6i.xlarge', fallbackTypes }, catalogue());
      return x.ok ? 'accepted' : x.reason;
    };
    expect(refused(['m6i.xlarge', 'm6i.xlarge'])).toBe('fallback m6i.xlarge is listed twice');
    expect(refused(['r6i.xlarge'])).toBe('fallback r6i.xlarge is the target type itself');
    expect(refused(['m6i.large'])).toMatch(/own type/);
    expect(refused(['m6g.xlarge'])).toMatch(/^fallback m6g.xlarge runs arm64/);
  });

  it('the shipped price file is dated and complete for the main regions; a bad file says what is wrong', () => {
    const p = priceList({});
    expect(p.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const region of ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1'])
      for (const type of ['m6i.large', 'r6i.xlarge', 'm6g.xlarge', 't3.large'])
        expect(p.perHour(region, type), `${region} ${type}`).toBeGreaterThan(0);
    expect(p.perHour('eu-west-1', 'x9.weird')).toBeNull();
    expect(() => parsePriceFile({ source: 's', date: 'yesterday', currency: 'EUR', regions: {} }, 'mine.json')).toThrow(
      /^mine.json: date: a date as YYYY-MM-DD; currency: /,
    );
    expect(() =>
      parsePriceFile(
        { source: 's', date: '2026-11-01', currency: 'USD', regions: { Mars: { 'm6i.large': 0.1, 'bad type': 1 } } },
        'mine.json',
      ),
    ).toThrow('mine.json: regions.Mars: not a region such as eu-west-1; regions.Mars.bad type: not an instance type such as m6i.large');
  });
});
