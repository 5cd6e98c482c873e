// The role a subscription of the upgrade connects as: made for the upgrade (`pgherd_upgrade_<id>`, a
// member of group `pgherd_upgrade`, which pg_hba.conf admits over TLS with SCRAM only), LOGIN
// REPLICATION, SELECT on the tables it copies, a random password that is set anew each time a
// subscription is made with it, and dropped at the cleanup. The environment's own password for pgherd
// never goes into a subscription: a CONNECTION string is kept in pg_subscription, readable by every
// superuser of the subscriber, and can reach a statement log.
// The password reaches the publisher only as its SCRAM secret, computed here.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type pg from 'pg';

/** The group pg_hba.conf names (`hostssl all +pgherd_upgrade … scram-sha-256`). */
export const UPGRADE_GROUP = 'pgherd_upgrade';
export const upgradeRole = (upgradeId: number) => `pgherd_upgrade_${String(upgradeId)}`;

/** A SCRAM-SHA-256 secret for `password`, as Postgres stores it (RFC 5802, 4096 iterations). */
export function scramSecret(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${String(iterations)}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Settings of the session that makes a subscription or the role: nothing of its statements is logged
 * (the server's log, pgaudit) or kept with its text (pg_stat_statements), a failed one included.
 * Each is a statement of its own: a multi-statement string is logged whole before any SET applies.
 */
export async function quietSession(c: pg.ClientBase): Promise<void> {
  for (const [name, value] of [
    ['log_statement', 'none'],
    ['log_min_duration_statement', '-1'],
    ['log_min_error_statement', 'panic'],
    ['pgaudit.log', 'none'],
    ['pg_stat_statements.track_utility', 'off'],
  ] as const)
    await c.query('SELECT pg_catalog.set_config($1, $2, false)', [name, value]);
}

/**
 * Makes (or finds) the upgrade's role on the publisher `c` is connected to and gives it a new random
 * password: the one the subscription about to be made will hold. Returns it.
 */
export async function upgradeRoleWithNewPassword(c: pg.ClientBase, upgradeId: number): Promise<{ user: string; password: string }> {
  const user = upgradeRole(upgradeId);
  const password = randomBytes(24).toString('base64url');
  const secret = c.escapeLiteral(scramSecret(password));
  await quietSession(c);
  const has = async (name: string) => !!(await c.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [name])).rowCount;
  if (!(await has(UPGRADE_GROUP))) await c.query(`CREATE ROLE ${UPGRADE_GROUP} NOLOGIN`);
  if (await has(user)) await c.query(`ALTER ROLE ${user} WITH LOGIN REPLICATION NOSUPERUSER PASSWORD ${secret}`);
  else
    await c.query(
      `CREATE ROLE ${user} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${secret} IN ROLE ${UPGRADE_GROUP}`,
    );
  return { user, password };
}

/** SELECT on the tables `publication` publishes in this database (and USAGE on their schemas): what its initial copy reads. */
export async function grantPublished(c: pg.ClientBase, upgradeId: number, publication: string): Promise<void> {
  const user = upgradeRole(upgradeId);
  const { rows } = await c.query<{ s: string; t: string }>(
    'SELECT schemaname AS s, tablename AS t FROM pg_catalog.pg_publication_tables WHERE pubname = $1',
    [publication],
  );
  for (const s of new Set(rows.map((r) => r.s))) await c.query(`GRANT USAGE ON SCHEMA ${c.escapeIdentifier(s)} TO ${user}`);
  for (const r of rows) await c.query(`GRANT SELECT ON ${c.escapeIdentifier(r.s)}.${c.escapeIdentifier(r.t)} TO ${user}`);
}

/** In one database: what the role was granted there taken back (run in each before `dropUpgradeRole`). */
export async function revokeUpgradeRole(c: pg.ClientBase, upgradeId: number): Promise<void> {
  const user = upgradeRole(upgradeId);
  if ((await c.query('SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1', [user])).rowCount) await c.query(`DROP OWNED BY ${user}`);
}

/** The role dropped from the cluster (its grants revoked first in every database). */
export async function dropUpgradeRole(c: pg.ClientBase, upgradeId: number): Promise<void> {
  await c.query(`DROP ROLE IF EXISTS ${upgradeRole(upgradeId)}`);
}
