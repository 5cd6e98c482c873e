// The blackout calendar: dates or times when rules do not fire, globally or for an
// environment's or a herd's targets. Dates are read in the blackout's own time zone and kept as the
// instants they begin and end, so every worker agrees whatever its clock's zone.
import { and, asc, eq, gt } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { pgError } from '@/db/pg-error';
import { blackouts } from '@/db/schema';
import { writeAudit, diffChanges } from '@/lib/engine/write-audit';
import { demand, type Access } from '@/lib/engine/access';
import { idNumber } from '@/lib/adapters/validation/ids';
import { isPlainName, isPlainText, NO_TRICKS } from '@/lib/adapters/validation/text';
import { knownTimeZone } from './cron';
import { RuleError } from './rules';
import type { Actor } from '@/lib/engine/access';
import { appliesWithin, placeFor, readerScope } from './scope-visibility';

// Years a Date holds as written (Date.UTC reads 0-99 as 1900-1999; the day after 9999-12-31 has no ISO form).
const day = z.iso.date({ message: 'a date, YYYY-MM-DD' }).refine((d) => d >= '1970-01-01' && d <= '9998-12-31', 'a date from 1970 to 9998');

export const blackoutBody = z
  .object({
    name: z.string().trim().min(1, 'a blackout needs a name').max(100).refine(isPlainName, NO_TRICKS),
    reason: z.string().max(2000).refine(isPlainText, NO_TRICKS).default(''),
    /** Whole days, first and last included, in `timezone`... */
    dates: z.object({ from: day, to: day }).strict().optional(),
    timezone: z.string().refine(knownTimeZone, 'not a time zone this server knows (an IANA name such as Europe/Paris)').default('UTC'),
    /** ...or two instants with their offsets. */
    startsAt: z.iso.datetime({ offset: true, message: 'an ISO 8601 time with its offset' }).optional(),
    endsAt: z.iso.datetime({ offset: true, message: 'an ISO 8601 time with its offset' }).optional(),
    /** Null or absent: every rule everywhere. */
    environmentId: idNumber('environmentId').nullable().optional(),
    herdId: idNumber('herdId').nullable().optional(),
  })
  .strict()
  .refine((b) => !!b.dates !== !!(b.startsAt ?? b.endsAt), { message: 'give dates, or startsAt and endsAt', path: ['dates'] })
  .refine((b) => !b.startsAt === !b.endsAt, { message: 'give both startsAt and endsAt', path: ['endsAt'] })
  .refine((b) => !(b.environmentId && b.herdId), { message: 'an environment or a herd, not both', path: ['herdId'] })
  .refine((b) => !b.dates || b.dates.from <= b.dates.to, { message: 'the last day is before the first', path: ['dates', 'to'] })
  .refine((b) => !b.startsAt || !b.endsAt || new Date(b.endsAt) > new Date(b.startsAt), {
    message: 'it ends before it starts',
    path: ['endsAt'],
  });

export type BlackoutBody = z.output<typeof blackoutBody>;

/** The zone's offset from UTC at `t`, in ms (what Intl says the wall clock reads there, minus UTC). */
function offsetAt(t: number, tz: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(new Date(t))
      .map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return wall - Math.floor(t / 1000) * 1000;
}

/** The instant a date's midnight is in `tz` (a day that starts at 01:00 there, by a DST change, starts then). */
export function startOfDay(date: string, tz: string): Date {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d);
  let t = guess - offsetAt(guess, tz);
  t = guess - offsetAt(t, tz);
  return new Date(t);
}

const nextDay = (date: string) => {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
};

/** When a body's blackout begins and ends. */
export function spanOf(b: BlackoutBody): { startsAt: Date; endsAt: Date } {
  if (b.dates) return { startsAt: startOfDay(b.dates.from, b.timezone), endsAt: startOfDay(nextDay(b.dates.to), b.timezone) };
  return { startsAt: new Date(b.startsAt ?? ''), endsAt: new Date(b.endsAt ?? '') };
}

/**
 * Who may set or lift a blackout or a maintenance window (`what`): a global admin for a global one, an
 * admin of its environment (a herd's: the herd's environment) otherwise.
 */
export async function demandScoped(
  db: Db,
  actor: Actor,
  environmentId: number | null,
  herdId: number | null,
  verb: string,
  what = 'blackout',
) {
  const env = await placeFor(db, actor.access, environmentId, herdId, what);
  await demand(db, actor.access, 'admin', `${verb} a ${env === null ? 'global ' : ''}${what}`, [env]);
}

export async function createBlackout(db: Db, actor: Actor, b: BlackoutBody) {
  const span = spanOf(b);
  const environmentId = b.environmentId ?? null;
  const herdId = b.herdId ?? null;
  await demandScoped(db, actor, environmentId, herdId, 'Setting');
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(blackouts)
        .values({ name: b.name, reason: b.reason, timezone: b.timezone, ...span, environmentId, herdId, createdBy: actor.username })
        .returning();
      if (!row) throw new Error('the database returned no row');
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'blackout.created',
        objectType: 'blackouts',
        objectId: String(row.id),
        objectLabel: row.name,
        environmentId,
        changes: diffChanges(null, { ...span, timezone: b.timezone, environmentId, herdId, reason: b.reason }),
      });
      return row;
    });
  } catch (err) {
    // An environment that does not exist: the foreign key says so.
    if (pgError(err).code === '23503')
      throw new RuleError(400, 'invalid blackout', [{ path: 'environmentId', message: `no environment #${String(environmentId)}` }]);
    throw err;
  }
}

export async function deleteBlackout(db: Db, actor: Actor, id: number): Promise<void> {
  const [b] = await db
    .select()
    .from(blackouts)
    .where(and(eq(blackouts.id, id), appliesWithin(blackouts, readerScope(actor.access))));
  // One the actor may not see is not there for them: a 404, as for an id that does not exist.
  if (!b) throw new RuleError(404, `no blackout #${String(id)}`);
  await demandScoped(db, actor, b.environmentId, b.herdId, 'Lifting');
  await db.transaction(async (tx) => {
    await tx.delete(blackouts).where(eq(blackouts.id, id));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'blackout.deleted',
      objectType: 'blackouts',
      objectId: String(id),
      objectLabel: b.name,
      environmentId: b.environmentId,
      changes: diffChanges({ startsAt: b.startsAt, endsAt: b.endsAt }, {}),
    });
  });
}

/** The blackouts `access` may see (scope-visibility.ts) not over yet (or every one, `past`), soonest first. */
export async function listBlackouts(db: Db, access: Access, past = false, now = new Date()) {
  return db
    .select()
    .from(blackouts)
    .where(and(appliesWithin(blackouts, readerScope(access)), past ? undefined : gt(blackouts.endsAt, now)))
    .orderBy(asc(blackouts.startsAt), asc(blackouts.id));
}
