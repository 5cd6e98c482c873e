// Maintenance windows (issue 17, what managed Postgres services offer): weekly windows in a time zone,
// for every herd, an environment's herds or one herd. A rule marked `insideWindow` fires on a herd only
// while one of the herd's windows is open (a herd with none is skipped, saying so), and a rolling
// operation it started waits between waves while the next wave's herds have no window open, and goes on
// by itself when one opens (lib/ops/conductor.ts). A window's openings are a cron expression in its
// zone ("MM HH * * days"), so a daylight-saving change moves them as the wall clock does.
import { CronExpressionParser } from 'cron-parser';
import { and, asc, eq, inArray, isNull, or } from 'drizzle-orm';
import { z } from 'zod';
import type { Db, Queries } from '@/db/client';
import { pgError } from '@/db/pg-error';
import { herds, maintenanceWindows } from '@/db/schema';
import { writeAudit, diffChanges } from '@/lib/audit/write-audit';
import { idNumber } from '@/lib/validation/ids';
import { isPlainName, NO_TRICKS } from '@/lib/validation/text';
import { demandScoped } from './blackouts';
import { knownTimeZone } from './cron';
import { RuleError, type RuleActor } from './rules';

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

const cronOf = (w: WindowTimes) => {
  const [hh, mm] = w.starts.split(':');
  return `${String(Number(mm))} ${String(Number(hh))} * * ${[...w.days].sort().join(',')}`;
};

/** When the window last opened at or before `now`, and when it opens next after it. */
function openings(w: WindowTimes, now: Date): { last: Date; next: Date } {
  const at = (d: Date) => CronExpressionParser.parse(cronOf(w), { currentDate: d, tz: w.timezone });
  // The opening at exactly `now` counts as the last one (prev() is strictly before).
  const last = at(new Date(now.getTime() + 1)).prev().toDate();
  return { last, next: at(now).next().toDate() };
}

/** Whether the window is open at `now`, and until when (open) or from when (closed). */
export function windowAt(w: WindowTimes, now: Date): { open: boolean; until: Date | null; next: Date } {
  const { last, next } = openings(w, now);
  const end = new Date(last.getTime() + w.durationMinutes * 60_000);
  return end > now ? { open: true, until: end, next } : { open: false, until: null, next };
}

/** What a herd's windows say at `now`: open (one is), or closed with the next opening; `none`: it has no window. */
export type HerdWindow = { open: true } | { open: false; none: boolean; next: Date | null };

export function herdWindowAt(ws: WindowTimes[], now: Date): HerdWindow {
  if (!ws.length) return { open: false, none: true, next: null };
  const states = ws.map((w) => windowAt(w, now));
  if (states.some((s) => s.open)) return { open: true };
  return { open: false, none: false, next: new Date(Math.min(...states.map((s) => s.next.getTime()))) };
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
  return `outside herd ${herd}'s maintenance windows (the next opens at ${w.next?.toISOString() ?? '?'})`;
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
        environmentId,
        changes: diffChanges(null, values),
      });
      return row;
    });
  } catch (err) {
    if (pgError(err).code === '23503')
      throw new RuleError(400, 'invalid maintenance window', [{ path: 'environmentId', message: `no environment #${String(environmentId)}` }]);
    throw err;
  }
}

export async function deleteWindow(db: Db, actor: RuleActor, id: number): Promise<void> {
  const [w] = await db.select().from(maintenanceWindows).where(eq(maintenanceWindows.id, id));
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
      environmentId: w.environmentId,
      changes: diffChanges({ days: w.days, starts: w.starts, durationMinutes: w.durationMinutes, timezone: w.timezone }, {}),
    });
  });
}

export const listWindows = (db: Queries) => db.select().from(maintenanceWindows).orderBy(asc(maintenanceWindows.id));

/** A window in words: "Tuesday, Thursday 02:00 for 120 min (Europe/Paris)". */
export const windowWords = (w: WindowTimes) =>
  `${[...w.days]
    .sort()
    .map((d) => DAY_NAMES[d] ?? '?')
    .join(', ')} ${w.starts} for ${String(w.durationMinutes)} min (${w.timezone})`;
