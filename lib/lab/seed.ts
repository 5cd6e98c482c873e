// Puts the lab's sandbox fleet into the inventory, with facts read from the running instances.
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { createDb, type Db, type Queries } from '@/db/client';
import { migrateDatabase } from '@/db/migrate';
import { backupPolicies, dnsRecords, environments, herds, instances, poolers, roleBindings, servers, sites } from '@/db/schema';
import { LAB_ZONE, READ_NAME_TTL, readNameOf, useLabSettings, writeNameOf, type LabInfo, type LabInstance } from './lab';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { labSshFor } from './sshd';

interface Observed {
  systemIdentifier: string;
  inRecovery: boolean;
  timeline: number;
  lsn: number;
  serverVersionNum: number;
}

/** The row an INSERT ... RETURNING (an upsert) gives back. */
function returned<T>(rows: T[], what: string): T {
  const [row] = rows;
  if (!row) throw new Error(`seedLabFleet: no row returned for ${what}`);
  return row;
}

/**
 * A lab host as a server of the inventory (an instance's or a PgBouncer's), reached over the lab's SSH.
 * The lab's host keys are known: they are pinned now, as an admin would after checking them.
 */
async function upsertLabServer(
  tx: Queries,
  lab: LabInfo,
  environmentId: number,
  hostname: string,
  at: { address: string; site: string; environment: string },
): Promise<number> {
  const row = returned(
    await tx
      .insert(servers)
      .values({
        hostname,
        environmentId,
        address: at.address,
        site: at.site,
        sshUser: lab.osUser,
        sshPort: lab.ssh?.port ?? 22,
        sshHostKeyFingerprint: lab.ssh ? labSshFor(lab.ssh, at.environment).hostKeyFingerprint : null,
      })
      .onConflictDoUpdate({
        target: servers.hostname,
        set: {
          address: sql`excluded.address`,
          site: sql`excluded.site`,
          sshPort: sql`excluded.ssh_port`,
          sshHostKeyFingerprint: sql`excluded.ssh_host_key_fingerprint`,
        },
      })
      .returning({ id: servers.id }),
    `server ${hostname}`,
  );
  return row.id;
}

/** An id the seeding itself stored a moment ago. */
function seeded(ids: Map<string, number>, key: string, what: string): number {
  const id = ids.get(key);
  if (id === undefined) throw new Error(`seedLabFleet: no ${what} ${key}`);
  return id;
}

/** What the instance says of itself; null when it does not answer (stopped by someone, say). */
async function observe(i: LabInstance): Promise<Observed | null> {
  const c = new pg.Client({ connectionString: i.dsn, connectionTimeoutMillis: 5000 });
  c.on('error', () => {}); // reported by connect() or the query, which reject with it
  try {
    await c.connect();
  } catch {
    return null;
  }
  try {
    const {
      rows: [r],
    } = await c.query<{ sysid: string; rec: boolean; tli: number; lsn: string; vnum: number }>(`
      SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
             current_setting('server_version_num')::int AS vnum,
             pg_is_in_recovery() AS rec,
             (SELECT timeline_id FROM pg_control_checkpoint()) AS tli,
             (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn`);
    if (!r) throw new Error(`${i.server}: the query returned no row`);
    return { systemIdentifier: r.sysid, inRecovery: r.rec, timeline: r.tli, lsn: lsnToNumber(r.lsn), serverVersionNum: r.vnum };
  } catch {
    return null; // it went away between connect and query (restarted by someone, say)
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * The lab's inventory as an admin would keep it. `instances: false` leaves the instances out, for the
 * lab's agents to discover (the demo): environments, herds (with their system identifiers, so
 * the agents' reports land in them), servers, DNS records, poolers and role bindings only.
 */
/**
 * A lab of one's own (a test file's or a benchmark's), ready for pgherd: its database migrated and
 * seeded with its fleet, and this process's settings pointed at it (PGHERD_PG_CONFIG, DNS).
 */
export async function seededDatabase(
  lab: LabInfo,
  poolSize: number,
  seed: { readNames?: boolean } = {},
): Promise<{ db: Db; pool: pg.Pool }> {
  await migrateDatabase(lab.database.url);
  const made = createDb(lab.database.url, poolSize);
  await seedLabFleet(made.db, lab, seed);
  useLabSettings(lab);
  return made;
}

/**
 * `readNames`: each replica's read name (in BIND from the lab's start) becomes a DNS record of its herd
 * matched to that instance, as a resize drains it. Off by default: the lab's own tests count the herds'
 * records; the demo and the resize tests turn it on.
 */
export async function seedLabFleet(db: Db, lab: LabInfo, opts: { instances?: boolean; readNames?: boolean } = {}): Promise<void> {
  const zone = lab.dns?.zone ?? LAB_ZONE;
  const observed = new Map(await Promise.all(lab.instances.map(async (i) => [i.server, await observe(i)] as const)));
  // Every member of a herd shares the system identifier: any member that answers tells it.
  const sysid = (env: string, herd: string) =>
    lab.instances
      .filter((m) => m.environment === env && m.herd === herd)
      .map((m) => observed.get(m.server)?.systemIdentifier)
      .find(Boolean) ?? null;
  await db.transaction(async (tx) => {
    // The lab's sites, with no cap (an admin sets one on the site's page).
    const siteNames = [...new Set(lab.instances.map((i) => i.site))];
    if (siteNames.length)
      await tx
        .insert(sites)
        .values(siteNames.map((name) => ({ name, description: `Lab site ${name}` })))
        .onConflictDoNothing({ target: sites.name });
    const envIds = new Map<string, number>();
    for (const name of [...new Set(lab.instances.map((i) => i.environment))]) {
      const row = returned(
        await tx
          .insert(environments)
          // The lab runs its Postgres with fsync off, for speed, on purpose: not a risk here (docs/risks.md).
          .values({ name, description: `Lab ${name} fleet`, riskThresholds: { ignore: ['fsync_off'] } })
          .onConflictDoUpdate({ target: environments.name, set: { description: sql`excluded.description` } })
          .returning({ id: environments.id }),
        `environment ${name}`,
      );
      envIds.set(name, row.id);
    }
    const herdIds = new Map<string, number>();
    const serverIds = new Map<string, number>();
    for (const i of lab.instances) {
      const key = `${i.environment}/${i.herd}`;
      if (!herdIds.has(key)) {
        const row = returned(
          await tx
            .insert(herds)
            .values({
              environmentId: seeded(envIds, i.environment, 'environment'),
              name: i.herd,
              description: `Lab herd ${i.herd} in ${i.environment}`,
              defaultPort: i.port,
              pgVersion: i.version,
              // A herd Patroni runs is driven through Patroni's REST API, never with pg_ctl behind its back.
              controlDriver: i.patroniUrl ? 'patroni' : 'pg_ctl',
              patroniScope: lab.patroni?.find((p) => p.environment === i.environment && p.herd === i.herd)?.scope ?? '',
              dnsName: writeNameOf(i.environment, i.herd, zone),
              systemIdentifier: sysid(i.environment, i.herd),
            })
            .onConflictDoUpdate({ target: [herds.environmentId, herds.name], set: { systemIdentifier: sql`excluded.system_identifier` } })
            .returning({ id: herds.id }),
          `herd ${key}`,
        );
        herdIds.set(key, row.id);
        await tx
          .insert(dnsRecords)
          .values({
            herdId: row.id,
            name: writeNameOf(i.environment, i.herd, zone),
            type: 'CNAME',
            // One environment's names may be served by Route 53 (the lab's moto) instead of BIND.
            ...(lab.aws?.route53?.environment === i.environment
              ? { zone: lab.aws.route53.zone, provider: 'route53' as const }
              : { zone, provider: 'rfc2136' as const }),
            match: 'role',
            matchRole: 'primary',
            ttl: 30,
          })
          .onConflictDoNothing();
      }
      serverIds.set(i.server, await upsertLabServer(tx, lab, seeded(envIds, i.environment, 'environment'), i.server, i));
    }
    const instanceIds = new Map<string, number>();
    const now = new Date();
    const members = opts.instances === false ? [] : lab.instances;
    for (const i of members) {
      const o = observed.get(i.server);
      const values = {
        herdId: seeded(herdIds, `${i.environment}/${i.herd}`, 'herd'),
        serverId: seeded(serverIds, i.server, 'server'),
        port: i.port,
        dataDirectory: i.dataDirectory,
        pgVersion: i.version,
        binDir: i.binDir ?? '',
        serverVersionNum: o?.serverVersionNum ?? null,
        patroniUrl: i.patroniUrl ?? '',
        role: o ? (o.inRecovery ? ('replica' as const) : ('primary' as const)) : i.role,
        observedRole: o ? (o.inRecovery ? ('replica' as const) : ('primary' as const)) : null,
        state: o ? ('running' as const) : ('stopped' as const),
        timeline: o?.timeline ?? null,
        lsn: o?.lsn ?? null,
        lastObservedAt: now,
      };
      const row = returned(
        await tx
          .insert(instances)
          .values(values)
          .onConflictDoUpdate({ target: [instances.serverId, instances.port], set: values })
          .returning({ id: instances.id }),
        `instance ${i.server}:${i.port}`,
      );
      instanceIds.set(i.server, row.id);
    }
    for (const i of members) {
      if (!i.upstream) continue;
      const a = observed.get(i.upstream);
      const b = observed.get(i.server);
      const lag = a && b ? Math.max(0, a.lsn - b.lsn) : null;
      await tx
        .update(instances)
        .set({ upstreamInstanceId: seeded(instanceIds, i.upstream, 'upstream instance'), lagBytes: lag, lagSeconds: 0 })
        .where(sql`${instances.id} = ${seeded(instanceIds, i.server, 'instance')}`);
    }
    for (const i of members.filter((m) => !m.upstream)) {
      await tx
        .update(instances)
        .set({ lagBytes: 0, lagSeconds: 0 })
        .where(sql`${instances.id} = ${seeded(instanceIds, i.server, 'instance')}`);
    }
    if (opts.readNames && lab.dns)
      for (const i of members.filter((m) => m.role === 'replica'))
        await tx
          .insert(dnsRecords)
          .values({
            herdId: seeded(herdIds, `${i.environment}/${i.herd}`, 'herd'),
            name: readNameOf(i, zone),
            type: 'CNAME',
            zone,
            match: 'instance',
            matchInstanceId: seeded(instanceIds, i.server, 'instance'),
            ttl: READ_NAME_TTL,
          })
          .onConflictDoNothing();
    // The directory's groups, bound to roles as a company would: production DBAs are admins there and
    // operators in staging; staging DBAs operate staging and may look at production; auditors see
    // everything and change nothing.
    if (lab.ldap) {
      const groups = lab.ldap.groups;
      const g = (name: string) => {
        const dn = groups[name];
        if (!dn) throw new Error(`seedLabFleet: the lab's directory has no group ${name}`);
        return dn;
      };
      const bindings = [
        { group: g('dba-prod'), role: 'admin' as const, env: 'production' },
        { group: g('dba-prod'), role: 'operator' as const, env: 'staging' },
        { group: g('dba-staging'), role: 'operator' as const, env: 'staging' },
        { group: g('dba-staging'), role: 'viewer' as const, env: 'production' },
        { group: g('admins-staging'), role: 'admin' as const, env: 'staging' },
        { group: g('ops-prod'), role: 'operator' as const, env: 'production' },
        { group: g('readonly'), role: 'viewer' as const, env: null },
      ];
      for (const b of bindings) {
        const environmentId = b.env === null ? null : envIds.get(b.env);
        if (environmentId === undefined) continue;
        await tx.insert(roleBindings).values({ role: b.role, subjectType: 'group', subject: b.group, environmentId }).onConflictDoNothing();
      }
    }
    // Each environment's backup host and scratch servers (empty hosts for restores and drills), and the
    // environment's backup policy, as an admin would set it: pgBackRest to the backup host, encrypted.
    // Configure backups applies it to a herd; nothing runs until then.
    for (const h of lab.backup?.hosts ?? []) {
      const environmentId = envIds.get(h.environment);
      if (environmentId === undefined) continue;
      const repoServerId = await upsertLabServer(tx, lab, environmentId, h.server, h);
      await tx
        .insert(backupPolicies)
        .values({
          environmentId,
          repoKind: 'posix',
          repoServerId,
          repoPath: h.repoPath,
          retentionFull: 2,
          encrypt: true,
          archiveTimeoutSeconds: 30,
        })
        .onConflictDoNothing();
    }
    for (const x of lab.backup?.scratch ?? []) {
      const environmentId = envIds.get(x.environment);
      if (environmentId !== undefined) await upsertLabServer(tx, lab, environmentId, x.server, x);
    }
    // PgBouncers: their own servers (reached over the lab's SSH), registered with the herd they front.
    for (const p of lab.pgbouncer) {
      const herdId = herdIds.get(`${p.environment}/${p.herd}`);
      if (!herdId) continue;
      const serverId = await upsertLabServer(tx, lab, seeded(envIds, p.environment, 'environment'), p.server, p);
      const values = { herdId, serverId, port: p.port, adminUser: p.adminUser, configFile: p.configFile, databases: p.databases };
      await tx
        .insert(poolers)
        .values(values)
        .onConflictDoUpdate({ target: [poolers.serverId, poolers.port], set: values });
    }
  });
}

/**
 * Each lab replica's read name (in BIND since the lab started) as a DNS record of its herd, matched to
 * the instance: for a fleet the agents discovered after the seed (the demo), once they have reported.
 * Returns how many replicas got one (a replica the agents have not reported yet gets none).
 */
export async function addLabReadNames(db: Db, lab: LabInfo): Promise<number> {
  if (!lab.dns) return 0;
  const zone = lab.dns.zone;
  let added = 0;
  for (const i of lab.instances.filter((m) => m.role === 'replica')) {
    const r = await db.execute(sql`
      INSERT INTO dns_records (herd_id, name, type, zone, match, match_instance_id, ttl)
      SELECT inst.herd_id, ${readNameOf(i, zone)}, 'CNAME', ${zone}, 'instance', inst.id, ${READ_NAME_TTL}
      FROM instances inst JOIN servers s ON s.id = inst.server_id
      WHERE s.hostname = ${i.server} AND inst.port = ${i.port}
      ON CONFLICT DO NOTHING`);
    added += r.rowCount ?? 0;
  }
  return added;
}
