// A rule's schedule: cron expressions in a named time zone, or one time. Parsed by cron-parser, the
// parser BullMQ's job schedulers use, so what the form and the API accept is what the scheduler will
// fire; the next fire times are shown in the rule's own time zone.
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { setting } from '@/lib/settings/settings';

/**
 * At most this many expressions a rule: one or two is usual (scale down, scale up), and each enabled rule's
 * expression is a job scheduler of its own in Redis.
 */
export const MAX_CRONS = 10;

/**
 * A pure function's answers kept (at most `size`, then forgotten all at once): a fire group reads the
 * stored schedules of thousands of rules sharing a few expressions and zones, and an Intl formatter or a
 * cron parse per rule was most of a 10,000-rule fire's time.
 */
function remembered<A extends string, R>(size: number, f: (...a: A[]) => R): (...a: A[]) => R {
  const kept = new Map<string, R>();
  return (...a: A[]) => {
    const key = a.join('\u0000');
    const hit = kept.get(key);
    if (hit !== undefined || kept.has(key)) return hit as R;
    if (kept.size >= size) kept.clear();
    const r = f(...a);
    kept.set(key, r);
    return r;
  };
}

/** Whether `tz` is an IANA time zone this runtime knows ("Europe/Paris", "UTC"). */
export const knownTimeZone = remembered(1000, (tz: string): boolean => {
  if (!/^[A-Za-z_+\-/0-9]{1,64}$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
});

/**
 * Why `expr` is not a cron expression pgherd runs, or null. Five fields (minute hour day month
 * weekday) or six (seconds first); the names and ranges cron-parser knows; nothing after the fields.
 */
export const cronProblem = (expr: string, tz = 'UTC'): string | null => cronProblemOf(expr, tz);

const cronProblemOf = remembered(5000, (expr: string, tz: string): string | null => {
  const fields = expr.trim().split(/\s+/);
  if (expr.length > 200) return 'at most 200 characters';
  if (fields.length !== 5 && fields.length !== 6)
    return `${fields.length} fields: a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)`;
  // H (a hashed value) is another time at every reading: the schedulers, the catch-up and the pages
  // would each see other fires.
  if (fields.some((f) => f.split(',').some((part) => /^H(\(|\/|$)/i.test(part))))
    return 'H (a hashed, random value) is not accepted: write the times you mean';
  try {
    const it = CronExpressionParser.parse(fields.join(' '), { tz, strict: false });
    it.next();
    return null;
  } catch (err) {
    return `not a cron expression: ${(err as Error).message}`;
  }
});

export const cronSchedule = z
  .object({
    cron: z.array(z.string().trim().min(1, 'an empty expression')).min(1, 'at least one expression').max(MAX_CRONS),
    timezone: z.string().refine(knownTimeZone, 'not a time zone this server knows (an IANA name such as Europe/Paris)'),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.cron.forEach((expr, k) => {
      const why = cronProblem(expr, knownTimeZone(s.timezone) ? s.timezone : 'UTC');
      if (why) ctx.addIssue({ code: 'custom', path: ['cron', k], message: why });
      const norm = expr.trim().split(/\s+/).join(' ');
      if (seen.has(norm)) ctx.addIssue({ code: 'custom', path: ['cron', k], message: 'listed twice' });
      seen.add(norm);
    });
  });

/** One time, with its offset ("2026-12-24T22:00:00+01:00"): a time without one would be read in some zone nobody chose. */
export const onceSchedule = z
  .object({
    at: z.iso.datetime({ offset: true, message: 'an ISO 8601 time with its offset, such as 2026-12-24T22:00:00+01:00 (or Z for UTC)' }),
  })
  .strict();

export const scheduleSchema = z.union([cronSchedule, onceSchedule]);
export type Schedule = z.output<typeof scheduleSchema>;

/**
 * The next `n` times the schedule fires after `from`, earliest first (several expressions merged,
 * a time two of them share counted once); a one-time schedule in the past fires never.
 */
export function nextFires(s: Schedule, from: Date, n = 5): Date[] {
  if ('at' in s) {
    const at = new Date(s.at);
    return at > from ? [at] : [];
  }
  const all = new Map<number, Date>();
  for (const expr of s.cron) {
    const it = CronExpressionParser.parse(expr.trim().split(/\s+/).join(' '), { tz: s.timezone, currentDate: from });
    for (let k = 0; k < n && it.hasNext(); k++) {
      const d = it.next().toDate();
      all.set(d.getTime(), d);
    }
  }
  return [...all.values()].sort((a, b) => a.getTime() - b.getTime()).slice(0, n);
}

const parsed = (expr: string, tz: string, currentDate: Date) =>
  CronExpressionParser.parse(expr.trim().split(/\s+/).join(' '), { tz, currentDate });

/**
 * The fires in (after, upTo], as a worker that was away looks for them: how many (counted up to
 * `cap`, beyond which `more` says so), and the last two (the one to run, the one before it).
 */
export function firesBetween(s: Schedule, after: Date, upTo: Date, cap = 10_000): { count: number; more: boolean; last: Date[] } {
  if (upTo <= after) return { count: 0, more: false, last: [] };
  if ('at' in s) {
    const at = new Date(s.at);
    return at > after && at <= upTo ? { count: 1, more: false, last: [at] } : { count: 0, more: false, last: [] };
  }
  // Walked forward, as the schedulers walk (prev() skips a time a DST change makes that next() gives).
  const times = new Set<number>();
  for (const expr of s.cron) {
    const it = parsed(expr, s.timezone, after);
    while (times.size <= cap && it.hasNext()) {
      const d = it.next().toDate();
      if (d > upTo) break;
      times.add(d.getTime());
    }
  }
  let last = [...times]
    .sort((x, y) => x - y)
    .slice(-2)
    .map((t) => new Date(t));
  if (times.size > cap) {
    // Too many to walk: the latest ones, walking back from upTo (one more millisecond: prev() gives times before its start).
    // cron-parser's walk back fails where a zone's clocks skip midnight (America/Santiago's 00:00 on its
    // spring-forward day: hasPrev() says none, prev() throws): then the last ones walked forward stand.
    const latest = new Map<number, Date>();
    try {
      for (const expr of s.cron) {
        const it = parsed(expr, s.timezone, new Date(upTo.getTime() + 1));
        for (let k = 0; k < 2 && it.hasPrev(); k++) {
          const d = it.prev().toDate();
          latest.set(d.getTime(), d);
        }
      }
      if (latest.size >= Math.min(2, last.length)) last = [...latest.values()].sort((x, y) => x.getTime() - y.getTime()).slice(-2);
    } catch {
      /* keep the forward walk's */
    }
  }
  return { count: Math.min(times.size, cap), more: times.size > cap, last };
}

/** A fire time as the rule's users read it: in its own time zone, with the zone's name ("Tue 24 Nov 2026, 09:30 CET"). */
export function fireTimeText(d: Date, tz: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: d.getUTCSeconds() ? '2-digit' : undefined,
    timeZoneName: 'short',
  }).format(d);
}

/**
 * The fewest seconds between two fires this pgherd accepts in a new or changed rule
 * (PGHERD_RULE_MIN_INTERVAL_SECONDS, default 60). A value that is not a number of seconds (a word, a
 * negative) throws rather than reading as the default or as none: a typo must not lift the guard.
 */
export const minIntervalSeconds = () => setting('PGHERD_RULE_MIN_INTERVAL_SECONDS');

/**
 * Why the schedule fires too often, or null: two of its next `n` fires (all its expressions merged,
 * so two expressions a second apart count) closer than `minSeconds`. A rule a second apart would keep
 * the worker pool planning and auditing around the clock, and the fleet restarting.
 */
export function intervalProblem(s: Schedule, minSeconds = minIntervalSeconds(), from = new Date(), n = 100): string | null {
  if ('at' in s || minSeconds <= 0) return null;
  // Within one expression, seconds closer than the minimum come closer in every minute it matches,
  // however rare (a 29 February): read off its seconds field, not found by walking its fires.
  for (const expr of s.cron) {
    const seconds = [...CronExpressionParser.parse(foldCron(expr), { tz: s.timezone }).fields.second.values].sort((a, b) => a - b);
    for (const [k, v] of seconds.entries()) {
      const prev = seconds[k - 1];
      if (prev !== undefined && v - prev < minSeconds)
        return `fires ${String(v - prev)} s apart (seconds ${String(prev)} and ${String(v)} of each minute “${foldCron(expr)}” matches): this pgherd runs rules at least ${String(minSeconds)} s apart`;
    }
  }
  const fires = nextFires(s, from, n);
  let shortest: [number, Date, Date] | null = null;
  for (const [k, d] of fires.entries()) {
    const prev = fires[k - 1];
    if (!prev) continue;
    const gap = (d.getTime() - prev.getTime()) / 1000;
    if (gap < minSeconds && (!shortest || gap < shortest[0])) shortest = [gap, prev, d];
  }
  if (shortest)
    return `fires ${String(shortest[0])} s apart (at ${shortest[1].toISOString()} and ${shortest[2].toISOString()}): this pgherd runs rules at least ${String(minSeconds)} s apart`;
  return null;
}

/** A cron expression as the schedulers and the rules table keep it: its fields, one space apart. */
export const foldCron = (expr: string) => expr.trim().split(/\s+/).join(' ');

/** The fire groups of a schedule: "<time zone>|<expression>" for each expression (a one-time rule has none). */
export const fireGroupsOf = (s: Schedule): string[] => ('at' in s ? [] : s.cron.map((c) => `${s.timezone}|${foldCron(c)}`));

/** A fire group back as its time zone and expression. */
export function splitGroup(group: string): { tz: string; pattern: string } {
  const bar = group.indexOf('|');
  return { tz: group.slice(0, bar), pattern: group.slice(bar + 1) };
}
