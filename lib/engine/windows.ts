// When a herd may be worked on: its maintenance windows (its own, its environment's and the global
// ones), read as the conductor and the rules read them. A window opens when its zone's wall clock shows
// its time on one of its days, and stays open for its duration in elapsed minutes. On a daylight-saving
// day, an opening time the clocks skip opens as far past the jump as it was meant to be past the hour
// (02:30 on a spring-forward day at 03:30), and one they show twice opens at the first: the window opens
// once that day, for its whole duration (a zone whose clocks skip midnight included).
import { and, inArray, isNull, or } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { herds, maintenanceWindows } from '@/db/schema';

export const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

export type WindowRow = typeof maintenanceWindows.$inferSelect;
export type WindowTimes = Pick<WindowRow, 'days' | 'starts' | 'durationMinutes' | 'timezone'>;

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();
// A window is read for each of its herds on every round, each time over the same three weeks of days:
// each day's opening is worked out once (four to six readings of the zone's clock each) and kept.
const instants = new Map<string, number>();

/** The wall clock of `tz` at instant `t`, as the instant it would be in UTC (milliseconds dropped). */
function wallClock(tz: string, t: number): number {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  const p = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const x of f.formatToParts(new Date(t))) if (x.type in p) p[x.type as keyof typeof p] = Number(x.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
}

/** The zone's offset from UTC at instant `t` (ms). */
const offsetAt = (tz: string, t: number) => wallClock(tz, t) - Math.floor(t / 1000) * 1000;

/**
 * The instant the zone's wall clock shows `local` (a wall-clock time written as if it were UTC): the
 * first of two when the clocks go back over it; when they jump over it, the instant as far past the
 * jump as `local` is past the jump's start (what Temporal calls "compatible").
 */
export function wallClockInstant(tz: string, local: number): number {
  const key = `${tz}|${String(local)}`;
  const known = instants.get(key);
  if (known !== undefined) return known;
  const before = offsetAt(tz, local - DAY_MS);
  const after = offsetAt(tz, local + DAY_MS);
  const valid = [local - before, local - after].filter((t) => offsetAt(tz, t) === local - t);
  const at = valid.length ? Math.min(...valid) : local - before;
  if (instants.size >= 50_000) instants.clear();
  instants.set(key, at);
  return at;
}

/** When the window last opened at or before `now`, and when it opens next after it. */
function openings(w: WindowTimes, now: Date): { last: Date; next: Date } {
  const [hh = 0, mm = 0] = w.starts.split(':').map(Number);
  const today = Math.floor(wallClock(w.timezone, now.getTime()) / DAY_MS) * DAY_MS;
  let last = -Infinity;
  let next = Infinity;
  // A week and a day each way, and back as far as the longest window (a week) lasts.
  for (let day = today - 15 * DAY_MS; day <= today + 8 * DAY_MS; day += DAY_MS) {
    if (!w.days.includes(new Date(day).getUTCDay())) continue;
    const at = wallClockInstant(w.timezone, day + (hh * 60 + mm) * 60_000);
    if (at <= now.getTime()) last = Math.max(last, at);
    else next = Math.min(next, at);
  }
  return { last: new Date(last), next: new Date(next) };
}

/** Whether the window is open at `now`, and until when (open) or from when (closed). */
export function windowAt(w: WindowTimes, now: Date): { open: boolean; until: Date | null; next: Date } {
  const { last, next } = openings(w, now);
  const end = new Date(last.getTime() + w.durationMinutes * 60_000);
  return end > now ? { open: true, until: end, next } : { open: false, until: null, next };
}

/**
 * What a herd's windows say at `now`: open (one is), or closed with the next opening; `none`: it has no
 * window; `unreadable`: why a window of it could not be read (a zone this server no longer knows), which
 * counts as closed: a herd is never taken for inside a window nobody can read.
 */
export type HerdWindow = { open: true } | { open: false; none: boolean; next: Date | null; unreadable?: string };

export function herdWindowAt(ws: WindowTimes[], now: Date): HerdWindow {
  if (!ws.length) return { open: false, none: true, next: null };
  const states: ReturnType<typeof windowAt>[] = [];
  let unreadable: string | undefined;
  for (const w of ws)
    try {
      states.push(windowAt(w, now));
    } catch (err) {
      unreadable ??= `its window ${windowWords(w)} cannot be read (${err instanceof Error ? err.message : String(err)})`;
    }
  if (states.some((s) => s.open)) return { open: true };
  const next = states.length ? new Date(Math.min(...states.map((s) => s.next.getTime()))) : null;
  return { open: false, none: false, next, ...(unreadable ? { unreadable } : {}) };
}

/** Each herd's windows: its own, its environment's and the global ones. */
export async function windowsOfHerds(db: Queries, herdIds: number[]): Promise<Map<number, WindowRow[]>> {
  const out = new Map<number, WindowRow[]>(herdIds.map((id) => [id, []]));
  if (!herdIds.length) return out;
  const hs = await db.select({ id: herds.id, env: herds.environmentId }).from(herds).where(inArray(herds.id, herdIds));
  const envs = [...new Set(hs.map((h) => h.env))];
  const rows = await db
    .select()
    .from(maintenanceWindows)
    .where(
      or(
        inArray(maintenanceWindows.herdId, herdIds),
        envs.length ? inArray(maintenanceWindows.environmentId, envs) : undefined,
        and(isNull(maintenanceWindows.herdId), isNull(maintenanceWindows.environmentId)),
      ),
    );
  for (const h of hs)
    out.set(
      h.id,
      rows.filter((w) => w.herdId === h.id || w.environmentId === h.env || (w.herdId === null && w.environmentId === null)),
    );
  return out;
}

/** Why a herd is outside its windows, in words (null: inside one). */
export function outsideWords(herd: string, w: HerdWindow): string | null {
  if (w.open) return null;
  if (w.none) return `herd ${herd} has no maintenance window (the rule fires only inside one)`;
  const next = w.next ? ` (the next opens at ${w.next.toISOString()})` : '';
  return `outside herd ${herd}'s maintenance windows${next}${w.unreadable ? `; ${w.unreadable}` : ''}`;
}

/** A window in words: "Tuesday, Thursday 02:00 for 120 min (Europe/Paris)". */
export const windowWords = (w: WindowTimes) =>
  `${[...w.days]
    .sort()
    .map((d) => DAY_NAMES[d] ?? '?')
    .join(', ')} ${w.starts} for ${String(w.durationMinutes)} min (${w.timezone})`;
