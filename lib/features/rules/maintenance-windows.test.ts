import { describe, expect, it } from 'vitest';
import { windowBody } from './maintenance-windows';
import { herdWindowAt, windowAt, windowWords } from '@/lib/engine/windows';

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

  it('open once on a daylight-saving day, for their whole duration: a skipped time opens past the jump, a repeated one at its first', () => {
    // Paris springs forward on Sunday 2027-03-28 (02:00 -> 03:00): 02:30 opens at 03:30 CEST, 01:30 UTC.
    const paris = w({ days: [0], starts: '02:30', durationMinutes: 60 });
    expect(windowAt(paris, new Date('2027-03-28T01:10:00Z'))).toMatchObject({ open: false, next: new Date('2027-03-28T01:30:00Z') });
    expect(windowAt(paris, new Date('2027-03-28T01:45:00Z'))).toMatchObject({ open: true, until: new Date('2027-03-28T02:30:00Z') });
    // It falls back on Sunday 2026-10-25 (03:00 -> 02:00): 02:30 comes twice, the window opens at the first, for 60 minutes.
    expect(windowAt(paris, new Date('2026-10-25T00:45:00Z'))).toMatchObject({ open: true, until: new Date('2026-10-25T01:30:00Z') });
    expect(windowAt(paris, new Date('2026-10-25T01:45:00Z'))).toMatchObject({ open: false, next: new Date('2026-11-01T01:30:00Z') });
    // New York skips 02:00 on 2027-03-14: 02:00 opens at 03:00 EDT.
    const ny = w({ days: [0], starts: '02:00', durationMinutes: 30, timezone: 'America/New_York' });
    expect(windowAt(ny, new Date('2027-03-14T07:10:00Z'))).toMatchObject({ open: true, until: new Date('2027-03-14T07:30:00Z') });
    // Santiago skips midnight (2026-09-06 00:00 -> 01:00): a window at 00:00 opens at 01:00 that day, and a
    // week on; the cron-based reading of this threw for the whole week.
    const santiago = w({ days: [0], starts: '00:00', durationMinutes: 60, timezone: 'America/Santiago' });
    for (const at of ['2026-09-06T04:30:00Z', '2026-09-07T12:00:00Z', '2026-09-12T12:00:00Z'])
      expect(() => windowAt(santiago, new Date(at))).not.toThrow();
    expect(windowAt(santiago, new Date('2026-09-06T04:30:00Z'))).toMatchObject({ open: true, until: new Date('2026-09-06T05:00:00Z') });
    expect(windowAt(santiago, new Date('2026-09-07T12:00:00Z')).next).toEqual(new Date('2026-09-13T03:00:00Z'));
    // Beirut, Havana and Cairo skip midnight too: a daily 00:00 window is read every day of a year.
    for (const timezone of ['Asia/Beirut', 'America/Havana', 'Africa/Cairo']) {
      const daily = w({ days: [0, 1, 2, 3, 4, 5, 6], starts: '00:00', durationMinutes: 30, timezone });
      for (let t = Date.parse('2026-11-24T12:00:00Z'); t < Date.parse('2027-11-24T12:00:00Z'); t += 86_400_000)
        expect(windowAt(daily, new Date(t)).next.getTime() - t).toBeLessThanOrEqual(2 * 86_400_000);
    }
  });

  it('count a window nobody can read as closed, saying which and why, never as open', () => {
    const gone = w({ timezone: 'Mars/Olympus' });
    expect(herdWindowAt([gone], new Date('2026-11-24T01:30:00Z'))).toEqual({
      open: false,
      none: false,
      next: null,
      unreadable: expect.stringMatching(/^its window Tuesday 02:00 for 120 min \(Mars\/Olympus\) cannot be read \(.*time zone/i),
    });
    expect(herdWindowAt([gone, w({})], new Date('2026-11-24T01:30:00Z'))).toEqual({ open: true });
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
