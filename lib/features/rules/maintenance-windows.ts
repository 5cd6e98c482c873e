// Maintenance windows (what managed Postgres services offer): weekly windows in a time zone,
// for every herd, an environment's herds or one herd. A rule marked `insideWindow` fires on a herd only
// while one of the herd's windows is open (a herd with none is skipped, saying so), and a rolling
// operation it started waits between waves while the next wave's herds have no window open, and goes on
// by itself when one opens (lib/engine/conductor.ts). How a window is read at a given time is the
// engine's (lib/engine/windows.ts); here they are made, listed and deleted.
import { and, asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db, Queries } from '@/db/client';
import { pgError } from '@/db/pg-error';
import { herds, maintenanceWindows } from '@/db/schema';
import { writeAudit, diffChanges } from '@/lib/engine/write-audit';
import type { Access } from '@/lib/engine/access';
import { idNumber } from '@/lib/adapters/validation/ids';
import { isPlainName, NO_TRICKS } from '@/lib/adapters/validation/text';
import { demandScoped } from './blackouts';
import { knownTimeZone } from './cron';
import { RuleError } from './rules';
import type { Actor } from '@/lib/engine/access';
import { appliesWithin, readerScope } from './scope-visibility';

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
/** The environment a window's audit entries are filed under: its own, or its herd's (null: every herd's). */
async function auditEnvironment(db: Queries, environmentId: number | null, herdId: number | null): Promise<number | null> {
  if (herdId === null) return environmentId;
  const [h] = await db.select({ env: herds.environmentId }).from(herds).where(eq(herds.id, herdId));
  return h?.env ?? null;
}

export async function createWindow(db: Db, actor: Actor, b: WindowBody) {
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

export async function deleteWindow(db: Db, actor: Actor, id: number): Promise<void> {
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
