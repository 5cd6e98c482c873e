import { describe, expect, it } from 'vitest';
import { herdWindowAt, windowAt, windowBody, windowWords } from './windows';

const w = (x: Partial<{ days: number[]; starts: string; durationMinutes: number; timezone: string }>) => ({
  days: [2],
  starts: '02:00',
  durationMinutes: 120,
  timezone: 'Europe/Paris',
  ...x,
});

describe('maintenance windows', () => {
  it('are open from their start on their days for their duration, on the wall clock of their zone', () => {
    // Tuesday 2026-11-24, Paris is UTC+1: 02:00-04:00 Paris is 01:00-03:00 UTC.
    expect(windowAt(w({}), new Date('2026-11-24T00:59:59Z')).open).toBe(false);
    expect(windowAt(w({}), new Date('2026-11-24T01:00:00Z'))).toMatchObject({ open: true, until: new Date('2026-11-24T03:00:00Z') });
    expect(windowAt(w({}), new Date('2026-11-24T02:59:59Z')).open).toBe(true);
    const after = windowAt(w({}), new Date('2026-11-24T03:00:00Z'));
    expect(after).toMatchObject({ open: false, next: new Date('2026-12-01T01:00:00Z') });
    // In summer (UTC+2) the same window is an hour earlier in UTC.
    expect(windowAt(w({}), new Date('2026-07-07T00:30:00Z')).open).toBe(true);
    expect(windowAt(w({}), new Date('2026-07-07T02:30:00Z')).open).toBe(false);
  });

  it('may run past midnight into the next day, and a herd is inside when any of its windows is', () => {
    const late = w({ days: [6], starts: '23:00', durationMinutes: 180, timezone: 'UTC' });
    expect(windowAt(late, new Date('2026-11-29T01:30:00Z')).open).toBe(true); // Sunday 01:30, opened Saturday 23:00
    expect(windowAt(late, new Date('2026-11-29T02:00:00Z')).open).toBe(false);
    expect(herdWindowAt([], new Date())).toEqual({ open: false, none: true, next: null });
    const closedBoth = herdWindowAt([late, w({ timezone: 'UTC' })], new Date('2026-11-25T12:00:00Z'));
    expect(closedBoth).toEqual({ open: false, none: false, next: new Date('2026-11-28T23:00:00Z') });
    expect(herdWindowAt([late, w({ days: [3], timezone: 'UTC', starts: '11:00' })], new Date('2026-11-25T12:00:00Z'))).toEqual({
      open: true,
    });
    expect(windowWords(late)).toBe('Saturday 23:00 for 180 min (UTC)');
  });

  it('refuse a bad body with the field', () => {
    const bad = (b: object) => windowBody.safeParse({ name: 'w', days: [1], starts: '02:00', durationMinutes: 60, ...b }).error?.issues[0];
    expect(bad({ days: [7] })?.message).toBe('0 (Sunday) to 6 (Saturday)');
    expect(bad({ days: [] })?.message).toBe('at least one day');
    expect(bad({ days: [1, 1] })?.message).toBe('a day given twice');
    expect(bad({ starts: '24:00' })?.path).toEqual(['starts']);
    expect(bad({ starts: '2:00; DROP' })?.path).toEqual(['starts']);
    expect(bad({ durationMinutes: 10_081 })?.path).toEqual(['durationMinutes']);
    expect(bad({ timezone: 'Mars/Olympus' })?.path).toEqual(['timezone']);
    expect(bad({ environmentId: 1, herdId: 2 })?.path).toEqual(['herdId']);
    expect(bad({ extra: 1 })).toBeDefined();
  });
});
