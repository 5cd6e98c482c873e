// The demo's fleet objects shown working from the start: staging declares a role, a database and an access
// rule (the object set "staging-app", beside the lab's own pg_hba lines), and once the console is ready they
// are applied to staging's herds by an operation requested by "demo". A newcomer who then changes the role
// by hand (ALTER ROLE app CONNECTION LIMIT 5) sees the drift on the herd's page within a minute.
import { eq, sql } from 'drizzle-orm';
import { createDb } from '@/db/client';
import { environments, herds, objectSets } from '@/db/schema';
import { queuePrefix } from '@/lib/engine/queue';
import { applyObjectsAction } from '@/lib/actions/objects/apply-objects.action';
import { openQueue, runOperation } from '@/lib/testing/operations';
import { waitFor } from '@/lib/testing/wait';
import { pgherdRoleOf, useLabSettings, type LabInfo } from './lab';

const ENVIRONMENT = 'staging';

/** The lab's pg_hba lines (lib/lab/postgres.ts hbaFor) with one for the application's role. */
export function demoDeclaration(pgherdUser: string): string {
  return [
    '# The application: its owner, its login role, its database, and who may reach it.',
    'role app_owner',
    'role app login connlimit=20 in=app_owner',
    'database app owner=app_owner connect=app',
    '# The replicas stream as the lab superuser; pgherd connects as its own role, over TLS.',
    'ignore role replicator',
    'hba local all all trust',
    `hba hostssl all ${pgherdUser} 127.0.0.0/8 scram-sha-256`,
    `hba host all ${pgherdUser} 0.0.0.0/0 reject`,
    'hba hostssl all +pgherd_upgrade 127.0.0.0/8 scram-sha-256',
    'hba host all +pgherd_upgrade 0.0.0.0/0 reject',
    'hba hostssl app app 127.0.0.0/8 scram-sha-256',
    'hba host all all 127.0.0.0/8 trust',
    'hba local replication all trust',
    'hba host replication all 127.0.0.0/8 trust',
  ].join('\n');
}

/** Declares staging's objects and applies them; says what it did, or why it stopped, through `log`. */
export async function showObjects(lab: LabInfo, log: (m: string) => void): Promise<void> {
  if (!lab.redis) return;
  useLabSettings(lab);
  const { db, pool } = createDb(lab.database.url, 2);
  const q = openQueue(lab, queuePrefix());
  try {
    const [env] = await db
      .select({ id: environments.id, set: environments.objectSetId })
      .from(environments)
      .where(eq(environments.name, ENVIRONMENT));
    if (!env) return;
    if (env.set === null) {
      const [set] = await db
        .insert(objectSets)
        .values({
          name: 'staging-app',
          description: "staging's application role, database and access rule",
          declaration: demoDeclaration(pgherdRoleOf(ENVIRONMENT)),
        })
        .onConflictDoNothing()
        .returning({ id: objectSets.id });
      if (!set) return;
      await db.execute(sql`INSERT INTO object_set_versions (set_id, version, name, declaration, author, note)
        SELECT id, version, name, declaration, 'demo', 'created' FROM object_sets WHERE id = ${set.id}`);
      await db.update(environments).set({ objectSetId: set.id }).where(eq(environments.id, env.id));
    }
    const ids = (await db.select({ id: herds.id }).from(herds).where(eq(herds.environmentId, env.id)).orderBy(herds.name)).map((h) => h.id);
    // The worker's objects pass reads each primary first (within PGHERD_OBJECTS_EVERY_MS).
    await waitFor(
      "staging's primaries read by the objects pass",
      async () =>
        (
          await db.execute<{ n: number }>(sql`
            SELECT count(*)::int AS n FROM instances i JOIN herds h ON h.id = i.herd_id
            WHERE h.environment_id = ${env.id} AND i.role = 'primary' AND NOT EXISTS (SELECT 1 FROM object_readings r WHERE r.instance_id = i.id)`)
        ).rows[0]?.n === 0 || undefined,
      120_000,
    );
    const r = await runOperation(db, q.queue, applyObjectsAction, { herdIds: ids }, {}, { username: 'demo', timeoutMs: 300_000 });
    const ok = r.targets.filter((t) => t.status === 'succeeded').length;
    log(
      `fleet objects: staging-app applied to ${String(ok)} of staging's herds (operation ${String(r.op.id)}); try ALTER ROLE app CONNECTION LIMIT 5 on a primary, then its herd's page`,
    );
  } finally {
    await q.close();
    await pool.end();
  }
}
