import { describe, expect, it } from 'vitest';
import { blackoutBody, spanOf, startOfDay } from './blackouts';

describe('blackout dates', () => {
  it('whole days in their own time zone, the last one included', () => {
    const b = blackoutBody.parse({ name: 'Christmas', dates: { from: '2026-12-24', to: '2026-12-26' }, timezone: 'Europe/Paris' });
    const s = spanOf(b);
    expect(s.startsAt.toISOString()).toBe('2026-12-23T23:00:00.000Z');
    expect(s.endsAt.toISOString()).toBe('2026-12-26T23:00:00.000Z');
  });
  it('a day a DST change shortens starts at its real midnight', () => {
    // Paris moves to summer time on 2026-03-29 at 02:00: that day is 23 hours long.
    expect(startOfDay('2026-03-29', 'Europe/Paris').toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(startOfDay('2026-03-30', 'Europe/Paris').toISOString()).toBe('2026-03-29T22:00:00.000Z');
    expect(startOfDay('2026-11-23', 'America/New_York').toISOString()).toBe('2026-11-23T05:00:00.000Z');
  });
  it('refuses what is not one blackout', () => {
    const bad = (b: object) => blackoutBody.safeParse({ name: 'x', ...b }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(bad({})).toEqual(['dates: give dates, or startsAt and endsAt']);
    expect(bad({ dates: { from: '2026-12-26', to: '2026-12-24' } })).toEqual(['dates.to: the last day is before the first']);
    expect(bad({ dates: { from: '2026-12-24', to: '2026-12-24' }, timezone: 'Mars/Olympus' })![0]).toMatch(/^timezone: not a time zone/);
    expect(bad({ startsAt: '2026-12-24T10:00:00Z', endsAt: '2026-12-24T09:00:00Z' })).toEqual(['endsAt: it ends before it starts']);
    expect(bad({ startsAt: '2026-12-24T10:00:00', endsAt: '2026-12-24T11:00:00Z' })).toEqual([
      'startsAt: an ISO 8601 time with its offset',
    ]);
    expect(bad({ dates: { from: '2026-12-24', to: '2026-12-24' }, environmentId: 1, herdId: 2 })).toEqual([
      'herdId: an environment or a herd, not both',
    ]);
  });
});

describe('blackout years', () => {
  it('refuses years a date cannot hold as written, never a 500 nor a shifted century', () => {
    for (const from of ['9999-12-31', '0000-01-01', '0099-06-01'])
      expect(blackoutBody.safeParse({ name: 'x', dates: { from, to: from } }).error?.issues[0]?.message).toBe('a date from 1970 to 9998');
  });
});
