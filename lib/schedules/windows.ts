// Maintenance windows (what managed Postgres services offer): weekly windows in a time zone,
// for every herd, an environment's herds or one herd. A rule marked `insideWindow` fires on a herd only
// while one of the herd's windows is open (a herd with none is skipped, saying so), and a rolling
// operation it started waits between waves while the next wave's herds have no window open, and goes on
// by itself when one opens (lib/ops/conductor.ts). A window opens when its zone's wall clock shows its
// time on one of its days, and stays open for its duration in elapsed minutes. On a daylight-saving
// day, an opening time the clocks skip opens as far past the jump as it was meant to be past the hour
// (02:30 on a spring-forward day at 03:30), and one they show twice opens at the first: the window
// opens once that day, for its whole duration (a zone whose clocks skip midnight included).
import { and, asc, eq, inArray, isNull, or } from 'drizzle-orm';
import { z } from 'zod';
import type { Db, Queries } from '@/db/client';
import { pgError } from '@/db/pg-error';
import { herds, maintenanceWindows } from '@/db/schema';
import { writeAudit, diffChanges } from '@/lib/audit/write-audit';
import type { Access } from '@/lib/auth/access';
import { idNumber } from '@/lib/validation/ids';
import { isPlainName, NO_TRICKS } from '@/lib/validation/text';
import { demandScoped } from './blackouts';
import { knownTimeZone } from './cron';
import { RuleError, type RuleActor } from './rules';
import { appliesWithin, readerScope } from './scope-visibility';

export const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

export const windowBody = z
  .object({
    name: z.string().trim().min(1, 'a window needs a name').max(100).refine(isPlainName, NO_TRICKS),
    /** The days it opens on: 0 (Sunday) to 6 (Saturday). */
    days: z
      .array(z.number().int().min(0, '0 (Sunday) to 6 (Saturday)').max(6, '0 (Sunday) to 6 (Saturday)'))
      .min(1, 'at least one day')
      .max(7)
      .refine((d) => new Set(d).size === d.length, 'a day given twice'),
    /** When it opens, on the wall clock of `timezone`. */
    starts: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day, HH:MM (00:00 to 23:59)'),
    durationMinutes: z.number().int().min(1).max(10_080, 'at most a week (10080 minutes)'),
    timezone: z.string().refine(knownTimeZone, 'not a time zone this server knows (an IANA name such as Europe/Paris)').default('UTC'),
    /** Null or absent: every herd. */
    environmentId: idNumber('environmentId').nullable().optional(),
    herdId: idNumber('herdId').nullable().optional(),
  })
  .strict()
  .refine((b) => !(b.environmentId && b.herdId), { message: 'an environment or a herd, not both', path: ['herdId'] });

export type WindowBody = z.output<typeof windowBody>;
export type WindowRow = typeof maintenanceWindows.$inferSelect;
type WindowTimes = Pick<WindowRow, 'days' | 'starts' | 'durationMinutes' | 'timezone'>;

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

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
  const before = offsetAt(tz, local - DAY_MS);
  const after = offsetAt(tz, local + DAY_MS);
  const valid = [local - before, local - after].filter((t) => offsetAt(tz, t) === local - t);
  return valid.length ? Math.min(...valid) : local - before;
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

/** The environment a window's audit entries are filed under: its own, or its herd's (null: every herd's). */
async function auditEnvironment(db: Queries, environmentId: number | null, herdId: number | null): Promise<number | null> {
  if (herdId === null) return environmentId;
  const [h] = await db.select({ env: herds.environmentId }).from(herds).where(eq(herds.id, herdId));
  return h?.env ?? null;
}

export async function createWindow(db: Db, actor: RuleActor, b: WindowBody) {
  const environmentId = b.environmentId ?? null;
  const herdId = b.herdId ?? null;
  await demandScoped(db, actor, environmentId, herdId, 'Setting', 'maintenance window');
  const values = {
    name: b.name,
    days: [...b.days].sort(),
    starts: b.starts,
    durationMinutes: b.durationMinutes,
    timezone: b.timezone,
    environmentId,
    herdId,
  };
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(maintenanceWindows)
        .values({ ...values, createdBy: actor.username })
        .returning();
      if (!row) throw new Error('the database returned no row');
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'maintenance_window.created',
        objectType: 'maintenance_windows',
        objectId: String(row.id),
        objectLabel: row.name,
        environmentId: await auditEnvironment(tx, environmentId, herdId),
        changes: diffChanges(null, values),
      });
      return row;
    });
  } catch (err) {
    if (pgError(err).code === '23503')
      throw new RuleError(400, 'invalid maintenance window', [
        { path: 'environmentId', message: `no environment #${String(environmentId)}` },
      ]);
    throw err;
  }
}

export async function deleteWindow(db: Db, actor: RuleActor, id: number): Promise<void> {
  const [w] = await db
    .select()
    .from(maintenanceWindows)
    .where(and(eq(maintenanceWindows.id, id), appliesWithin(maintenanceWindows, readerScope(actor.access))));
  // One the actor may not see is not there for them: a 404, as for an id that does not exist.
  if (!w) throw new RuleError(404, `no maintenance window #${String(id)}`);
  await demandScoped(db, actor, w.environmentId, w.herdId, 'Removing', 'maintenance window');
  await db.transaction(async (tx) => {
    await tx.delete(maintenanceWindows).where(eq(maintenanceWindows.id, id));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'maintenance_window.deleted',
      objectType: 'maintenance_windows',
      objectId: String(id),
      objectLabel: w.name,
      environmentId: await auditEnvironment(tx, w.environmentId, w.herdId),
      changes: diffChanges({ days: w.days, starts: w.starts, durationMinutes: w.durationMinutes, timezone: w.timezone }, {}),
    });
  });
}

/** The windows `access` may see (scope-visibility.ts), oldest first. */
export const listWindows = (db: Queries, access: Access) =>
  db
    .select()
    .from(maintenanceWindows)
    .where(appliesWithin(maintenanceWindows, readerScope(access)))
    .orderBy(asc(maintenanceWindows.id));

/** A window in words: "Tuesday, Thursday 02:00 for 120 min (Europe/Paris)". */
export const windowWords = (w: WindowTimes) =>
  `${[...w.days]
    .sort()
    .map((d) => DAY_NAMES[d] ?? '?')
    .join(', ')} ${w.starts} for ${String(w.durationMinutes)} min (${w.timezone})`;
