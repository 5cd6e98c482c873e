import { describe, expect, it } from 'vitest';
import {
  cronProblem,
  fireTimeText,
  firesBetween,
  intervalProblem,
  knownTimeZone,
  minIntervalSeconds,
  nextFires,
  scheduleSchema,
} from './cron';

const from = new Date('2026-11-23T12:00:00Z'); // a Monday; Paris is UTC+1 then

describe('a rule\u2019s schedule', () => {
  it('fires weekdays at 09:30 in its own time zone: the next five, as UTC instants and as its users read them', () => {
    const s = scheduleSchema.parse({ cron: ['30 9 * * 1-5'], timezone: 'Europe/Paris' });
    const next = nextFires(s, from);
    expect(next.map((d) => d.toISOString())).toEqual([
      '2026-11-24T08:30:00.000Z',
      '2026-11-25T08:30:00.000Z',
      '2026-11-26T08:30:00.000Z',
      '2026-11-27T08:30:00.000Z',
      '2026-11-30T08:30:00.000Z',
    ]);
    expect(fireTimeText(next[0]!, 'Europe/Paris')).toMatch(/^Tue,? 24 Nov 2026,? 09:30 (CET|GMT\+1)$/);
  });

  it('merges several expressions (scale down at night, up in the morning), a shared time once; seconds allowed', () => {
    const s = scheduleSchema.parse({ cron: ['0 22 * * *', '0 6 * * *', '0 6 * * 1'], timezone: 'UTC' });
    expect(nextFires(s, from, 4).map((d) => d.toISOString())).toEqual([
      '2026-11-23T22:00:00.000Z',
      '2026-11-24T06:00:00.000Z',
      '2026-11-24T22:00:00.000Z',
      '2026-11-25T06:00:00.000Z',
    ]);
    const every5s = scheduleSchema.parse({ cron: ['*/5 * * * * *'], timezone: 'UTC' });
    expect(nextFires(every5s, from, 3).map((d) => d.toISOString())).toEqual([
      '2026-11-23T12:00:05.000Z',
      '2026-11-23T12:00:10.000Z',
      '2026-11-23T12:00:15.000Z',
    ]);
  });

  it('one time, with its offset: fires once, never when past', () => {
    const once = scheduleSchema.parse({ at: '2026-12-24T22:00:00+01:00' });
    expect(nextFires(once, from).map((d) => d.toISOString())).toEqual(['2026-12-24T21:00:00.000Z']);
    expect(nextFires(once, new Date('2027-01-01T00:00:00Z'))).toEqual([]);
    expect(scheduleSchema.safeParse({ at: '2026-12-24T22:00:00' }).success).toBe(false);
  });

  it('refuses, saying where: a bad expression, a field too many or too few, a value out of range, a duplicate, an unknown zone, extra keys', () => {
    const issues = (v: unknown) => {
      const r = scheduleSchema.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(cronProblem('banana')).toMatch(/1 fields: a cron expression has 5/);
    expect(cronProblem('61 * * * *')).toMatch(/^not a cron expression: /);
    expect(cronProblem('0 0 0 * * * *')).toMatch(/7 fields/);
    expect(cronProblem('0 9 * * mon-fri')).toBeNull();
    expect(issues({ cron: ['0 9 * * *', ' 0  9 * * * '], timezone: 'UTC' })).toContain('cron.1: listed twice');
    expect(issues({ cron: ['0 25 * * *'], timezone: 'UTC' })).toEqual([expect.stringMatching(/^cron\.0: not a cron expression/)]);
    expect(issues({ cron: ['0 9 * * *'], timezone: 'Mars/Olympus' }).join()).toMatch(/timezone: not a time zone/);
    expect(issues({ cron: [], timezone: 'UTC' }).join()).toMatch(/at least one expression/);
    expect(scheduleSchema.safeParse({ cron: ['0 9 * * *'], timezone: 'UTC', colour: 'red' }).success).toBe(false);
    expect(knownTimeZone('Europe/Paris')).toBe(true);
    expect(knownTimeZone('../../etc/passwd')).toBe(false);
  });
});

describe('firesBetween: what a worker that was away finds', () => {
  const every5s = { cron: ['*/5 * * * * *'], timezone: 'UTC' };
  it('counts the fires in (after, upTo] and gives the last two', () => {
    const r = firesBetween(every5s, new Date('2026-11-23T10:00:00Z'), new Date('2026-11-23T10:01:00Z'));
    expect(r.count).toBe(12);
    expect(r.more).toBe(false);
    expect(r.last.map((d) => d.toISOString())).toEqual(['2026-11-23T10:00:55.000Z', '2026-11-23T10:01:00.000Z']);
  });
  it('stops counting at the cap and says there were more', () => {
    const r = firesBetween(every5s, new Date('2026-11-23T00:00:00Z'), new Date('2026-11-24T00:00:00Z'), 100);
    expect(r).toMatchObject({ count: 100, more: true });
    expect(r.last.at(-1)!.toISOString()).toBe('2026-11-24T00:00:00.000Z');
  });
  it('nothing when no fire fell in between; a one-time schedule once', () => {
    const daily = { cron: ['30 9 * * *'], timezone: 'Europe/Paris' };
    expect(firesBetween(daily, new Date('2026-11-23T08:31:00Z'), new Date('2026-11-23T09:00:00Z')).count).toBe(0);
    expect(
      firesBetween(daily, new Date('2026-11-23T08:00:00Z'), new Date('2026-11-23T09:00:00Z')).last.map((d) => d.toISOString()),
    ).toEqual(['2026-11-23T08:30:00.000Z']);
    const at = { at: '2026-11-23T10:00:00+01:00' };
    expect(firesBetween(at, new Date('2026-11-23T08:00:00Z'), new Date('2026-11-23T09:30:00Z')).count).toBe(1);
    expect(firesBetween(at, new Date('2026-11-23T09:00:00Z'), new Date('2026-11-23T09:30:00Z')).count).toBe(0);
  });
});

describe('firesBetween across a DST change', () => {
  it('a daily 02:30 in Paris on the spring-forward day is found, as the schedulers fire it', () => {
    const s = { cron: ['30 2 * * *'], timezone: 'Europe/Paris' };
    const [fire] = nextFires(s, new Date('2026-03-28T12:00:00Z'), 1);
    const r = firesBetween(s, new Date('2026-03-28T01:30:00Z'), new Date('2026-03-29T02:00:00Z'));
    expect(r.count).toBe(1);
    expect(r.last.map((d) => d.getTime())).toEqual([fire!.getTime()]);
  });

  it('a worker away for more fires than it walks, in a zone whose clocks skip midnight, still finds the latest ones', () => {
    // Every minute of Santiago's midnight hour, which 2026-09-06 skips: cron-parser's prev() throws from inside that day.
    const s = { cron: ['* 0 * * *'], timezone: 'America/Santiago' };
    const r = firesBetween(s, new Date('2026-08-01T00:00:00Z'), new Date('2026-09-06T12:00:00Z'), 100);
    expect(r.more).toBe(true);
    expect(r.last).toHaveLength(2);
  });

  it('refuses a minimum interval that is not a number of seconds rather than lifting the guard', () => {
    const saved = process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS;
    try {
      for (const [raw, want] of [
        ['', 60],
        [' 30 ', 30],
        ['0.5', 0.5],
        ['0', 0],
      ] as const) {
        process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS = raw;
        expect(minIntervalSeconds(), raw).toBe(want);
      }
      for (const raw of ['abc', '-5', '1e3']) {
        process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS = raw;
        expect(() => minIntervalSeconds(), raw).toThrow(/^PGHERD_RULE_MIN_INTERVAL_SECONDS must be a number from 0 to 604800/);
      }
    } finally {
      if (saved === undefined) delete process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS;
      else process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS = saved;
    }
  });

  it('refuses a schedule that fires more often than the minimum, however it hides it', () => {
    const at = (cron: string[], tz = 'UTC') => intervalProblem(scheduleSchema.parse({ cron, timezone: tz }), 60, from);
    expect(at(['* * * * * *'])).toMatch(/^fires 1 s apart .* at least 60 s apart$/);
    expect(at(['*/30 * * * * *'])).toMatch(/fires 30 s apart/);
    // Sub-minute fires only in one hour of the night, far from `from`.
    expect(at(['*/5 * 3 * * *'])).toMatch(/fires 5 s apart/);
    // Two expressions a second apart.
    expect(at(['0 * * * * *', '1 * * * * *'])).toMatch(/fires 1 s apart/);
    // Every second, but only on 29 February: far beyond the next 100 fires of the other expression.
    expect(at(['0 0 * * * *', '* * * 29 2 *'])).toMatch(/fires 1 s apart \(seconds 0 and 1 of each minute “\* \* \* 29 2 \*” matches\)/);
    expect(at(['* * * * *'])).toBeNull(); // every minute: the minimum
    expect(at(['0 2 * * *', '0 7 * * 1-5'], 'Europe/Paris')).toBeNull();
    expect(intervalProblem(scheduleSchema.parse({ at: '2026-12-24T22:00:00+01:00' }), 60, from)).toBeNull();
    expect(intervalProblem(scheduleSchema.parse({ cron: ['*/3 * * * * *'], timezone: 'UTC' }), 1, from)).toBeNull();
  });

  it('refuses H (a hashed value): each reading would give other fires', () => {
    expect(cronProblem('H * * * * *')).toMatch(/^H \(a hashed, random value\) is not accepted/);
    expect(cronProblem('H(0-29) 3 * * *')).toMatch(/^H /);
    expect(cronProblem('0 H/5 * * *')).toMatch(/^H /);
    expect(cronProblem('0 3 * * THU')).toBeNull(); // a weekday's name with an H in it is fine
    expect(scheduleSchema.safeParse({ cron: ['H H 3 1 1 *'], timezone: 'UTC' }).success).toBe(false);
  });
});
