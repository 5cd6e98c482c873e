// Fleet counts for the dashboard: by environment (with roles), by role and by state.
import { count, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import type { Db } from '@/db/client';
import { environments, herds, instances, servers } from '@/db/schema';

export interface DashboardData {
  totals: { environments: number; herds: number; servers: number; instances: number };
  byEnvironment: { id: number; name: string; herds: number; instances: number; primaries: number; replicas: number; notRunning: number }[];
  byRole: { role: string; n: number }[];
  byState: { state: string; n: number }[];
}

/** The one row a count without GROUP BY returns. */
function theCount(rows: { n: number }[], what: string): number {
  const [row] = rows;
  if (!row) throw new Error(`dashboard: the count of ${what} returned no row`);
  return row.n;
}

/** Counts over the environments in `scope` only (null: all), so that nobody learns what they may not see. */
export async function dashboardData(db: Db, scope: number[] | null): Promise<DashboardData> {
  const within = (col: Parameters<typeof inArray>[0]): SQL | undefined =>
    scope === null ? undefined : scope.length ? inArray(col, scope) : sql`false`;
  const si = db
    .select({ role: instances.role, state: instances.state })
    .from(instances)
    .innerJoin(herds, eq(instances.herdId, herds.id))
    .where(within(herds.environmentId))
    .as('si');
  const [env, byEnvironment, byRole, byState, h, s, i] = await Promise.all([
    db.select({ n: count() }).from(environments).where(within(environments.id)),
    db
      .select({
        id: environments.id,
        name: environments.name,
        herds: sql<number>`(SELECT count(*) FROM herds h WHERE h.environment_id = ${qualified(environments.id)})::int`,
        instances: sql<number>`count(${instances.id})::int`,
        primaries: sql<number>`(count(*) FILTER (WHERE ${instances.role} = 'primary'))::int`,
        replicas: sql<number>`(count(*) FILTER (WHERE ${instances.role} = 'replica'))::int`,
        notRunning: sql<number>`(count(*) FILTER (WHERE ${instances.state} <> 'running'))::int`,
      })
      .from(environments)
      .leftJoin(herds, eq(herds.environmentId, environments.id))
      .leftJoin(instances, eq(instances.herdId, herds.id))
      .where(within(environments.id))
      .groupBy(environments.id)
      .orderBy(environments.name),
    db.select({ role: si.role, n: count() }).from(si).groupBy(si.role).orderBy(si.role),
    db.select({ state: si.state, n: count() }).from(si).groupBy(si.state).orderBy(si.state),
    db.select({ n: count() }).from(herds).where(within(herds.environmentId)),
    db.select({ n: count() }).from(servers).where(within(servers.environmentId)),
    db.select({ n: count() }).from(si),
  ]);
  return {
    totals: {
      environments: theCount(env, 'environments'),
      herds: theCount(h, 'herds'),
      servers: theCount(s, 'servers'),
      instances: theCount(i, 'instances'),
    },
    byEnvironment,
    byRole,
    byState,
  };
}
