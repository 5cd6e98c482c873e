// A fleet of the size pgherd is built for, generated in SQL: 20 environments, 2,000 herds of 5
// (1 primary, 4 replicas), 10,000 servers and instances, with lag, states and sites spread out.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';

export interface ScaleShape {
  environments: number;
  herdsPerEnvironment: number;
  membersPerHerd: number;
}

/** 10,000 instances (the fleet pgherd is built for), or ten times that: 100,000 in 20,000 herds over 50 environments. */
export function scaleShape(instances: number): ScaleShape {
  if (instances === 10_000) return { environments: 20, herdsPerEnvironment: 100, membersPerHerd: 5 };
  if (instances === 100_000) return { environments: 50, herdsPerEnvironment: 400, membersPerHerd: 5 };
  throw new Error(`--scale ${instances}: the benchmark knows 10000 and 100000`);
}

export async function seedScale(db: Db, opts: ScaleShape = scaleShape(10_000)) {
  const { environments: e, herdsPerEnvironment: h, membersPerHerd: m } = opts;
  // Server names are numbered from 1 with as many digits as the largest number needs.
  const digits = String(e * h * m).length;
  // A server's host name from its herd and member number: written once here, and joined on by equality
  // (the unique index on host names) to give each member its server.
  const hostname = (herd: ReturnType<typeof sql>, k: ReturnType<typeof sql>) =>
    sql`'db' || lpad(((${herd} - 1) * ${m}::int + ${k})::text, ${digits}::int, '0') || '.' || (ARRAY['fra1', 'fra2', 'ams1', 'lon1'])[1 + ((${herd} + ${k}) % 4)] || '.example.com'`;
  await db.transaction(async (tx) => {
    await tx.execute(sql`
      INSERT INTO environments (name, description)
      SELECT 'env-' || lpad(g::text, 2, '0'), 'benchmark environment ' || g FROM generate_series(1, ${e}::int) g`);
    await tx.execute(sql`
      INSERT INTO herds (environment_id, name, dns_name, system_identifier, pg_version)
      SELECT env.id, 'herd-' || lpad(((env.id - 1) * ${h}::int + g)::text, 5, '0'),
             'herd-' || lpad(((env.id - 1) * ${h}::int + g)::text, 5, '0') || '.' || env.name || '.db.example.com',
             (7000000000000000000 + (env.id - 1) * ${h}::int + g)::text,
             (ARRAY[13, 14, 15, 16])[1 + ((env.id + g) % 4)]
      FROM environments env, generate_series(1, ${h}::int) g`);
    await tx.execute(sql`
      INSERT INTO servers (hostname, environment_id, address, site, ssh_user)
      SELECT ${hostname(sql`hd.id`, sql`k`)},
             hd.environment_id,
             '10.' || (hd.id / 250)::int || '.' || (hd.id % 250) || '.' || k,
             (ARRAY['fra1', 'fra2', 'ams1', 'lon1'])[1 + ((hd.id + k) % 4)],
             'postgres'
      FROM herds hd, generate_series(1, ${m}::int) k`);
    await tx.execute(sql`
      INSERT INTO instances (herd_id, server_id, port, data_directory, pg_version, role, state, timeline, lsn, lag_bytes, lag_seconds, last_observed_at)
      SELECT hd.id, s.id, 5432, '/var/lib/postgresql/' || hd.pg_version || '/main', hd.pg_version,
             CASE WHEN k = 1 THEN 'primary' ELSE 'replica' END::instance_role,
             CASE WHEN (s.id % 97) = 0 THEN 'stopped' WHEN (s.id % 211) = 0 THEN 'unreachable' ELSE 'running' END::instance_state,
             1 + (hd.id % 3),
             (hd.id::bigint << 28) + (k * 1000),
             CASE WHEN k = 1 THEN 0 ELSE ((s.id * 7919) % 50000000) END,
             CASE WHEN k = 1 THEN 0 ELSE ((s.id * 31) % 600) / 10.0 END,
             now()
      FROM herds hd
      CROSS JOIN generate_series(1, ${m}::int) k
      JOIN servers s ON s.hostname = ${hostname(sql`hd.id`, sql`k`)}`);
    await tx.execute(sql`
      UPDATE instances r SET upstream_instance_id = p.id
      FROM instances p WHERE p.herd_id = r.herd_id AND p.role = 'primary' AND r.role = 'replica'`);
  });
  await db.execute(sql`ANALYZE`);
}
