// Fleet counts for the dashboard: by environment (with roles), by role and by state.
import { count, eq, sql } from 'drizzle-orm';
import { qualified } from '@/lib/admin/qualified';
import type { Db } from '@/db/client';
import { environments, herds, instances, servers } from '@/db/schema';

export interface DashboardData {
  totals: { environments: number; herds: number; servers: number; instances: number };
  byEnvironment: { id: number; name: string; herds: number; instances: number; primaries: number; replicas: number; notRunning: number }[];
  byRole: { role: string; n: number }[];
  byState: { state: string; n: number }[];
}

export async function dashboardData(db: Db): Promise<DashboardData> {
  const [env, byEnvironment, byRole, byState, h, s, i] = await Promise.all([
    db.select({ n: count() }).from(environments),
    db.select({
      id: environments.id,
      name: environments.name,
      herds: sql<number>`(SELECT count(*) FROM herds h WHERE h.environment_id = ${qualified(environments.id)})::int`,
      instances: sql<number>`count(${instances.id})::int`,
      primaries: sql<number>`(count(*) FILTER (WHERE ${instances.role} = 'primary'))::int`,
      replicas: sql<number>`(count(*) FILTER (WHERE ${instances.role} = 'replica'))::int`,
      notRunning: sql<number>`(count(*) FILTER (WHERE ${instances.state} <> 'running'))::int`,
    }).from(environments)
      .leftJoin(herds, eq(herds.environmentId, environments.id))
      .leftJoin(instances, eq(instances.herdId, herds.id))
      .groupBy(environments.id)
      .orderBy(environments.name),
    db.select({ role: instances.role, n: count() }).from(instances).groupBy(instances.role).orderBy(instances.role),
    db.select({ state: instances.state, n: count() }).from(instances).groupBy(instances.state).orderBy(instances.state),
    db.select({ n: count() }).from(herds),
    db.select({ n: count() }).from(servers),
    db.select({ n: count() }).from(instances),
  ]);
  return {
    totals: { environments: env[0].n, herds: h[0].n, servers: s[0].n, instances: i[0].n },
    byEnvironment,
    byRole,
    byState,
  };
}
