// Which blackouts and maintenance windows a reader sees. Each names where it applies (an environment,
// a herd, or everything), and that place names the fleet: a staging operator must not learn from the
// calendar that production has a herd called payments, nor when production stops its rules.
import { and, inArray, isNull, or, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type { Queries } from '@/db/client';
import { herds } from '@/db/schema';
import { environmentsWith, roleIn, type Access } from '@/lib/engine/access';
import { RuleError } from './rules';

interface Scoped {
  environmentId: PgColumn;
  herdId: PgColumn;
}

/**
 * The rows a reader whose roles hold only in `scope` sees (null: every row): an environment's or a
 * herd's to that environment's viewers; one that applies everywhere to anyone with a role at all.
 */
export function appliesWithin(t: Scoped, scope: number[] | null): SQL | undefined {
  if (scope === null) return undefined;
  if (!scope.length) return sql`false`;
  return or(
    and(isNull(t.environmentId), isNull(t.herdId)),
    inArray(t.environmentId, scope),
    inArray(t.herdId, sql`(SELECT ${herds.id} FROM ${herds} WHERE ${inArray(herds.environmentId, scope)})`),
  );
}

/** The reader's scope for these lists: where they hold any role (null: everywhere). */
export const readerScope = (a: Access) => environmentsWith(a, 'viewer');

/**
 * The environment a blackout or window would apply in (a herd's: the herd's), as `access` may know
 * it: a herd or environment where the reader has no role answers as if it did not exist, so that ids
 * cannot be probed for names.
 */
export async function placeFor(
  db: Queries,
  access: Access,
  environmentId: number | null,
  herdId: number | null,
  what: string,
): Promise<number | null> {
  if (herdId !== null) {
    const [h] = await db
      .select({ env: herds.environmentId })
      .from(herds)
      .where(sql`${herds.id} = ${herdId}`);
    if (!h || roleIn(access, h.env) === null)
      throw new RuleError(400, `invalid ${what}`, [{ path: 'herdId', message: `no herd #${String(herdId)}` }]);
    return h.env;
  }
  if (environmentId !== null && roleIn(access, environmentId) === null)
    throw new RuleError(400, `invalid ${what}`, [{ path: 'environmentId', message: `no environment #${String(environmentId)}` }]);
  return environmentId;
}
