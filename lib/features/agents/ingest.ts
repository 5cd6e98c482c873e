// A validated report, written into the inventory in one statement. The server decides what the
// facts mean: the herd is the one with the instance's system identifier (every member of a
// replication herd shares it; an unknown one gets a new herd in the "unassigned" environment for an
// admin to place), the role comes from pg_is_in_recovery(), the upstream is the instance that listens
// where the replica streams from, the lag is measured against the herd's primary. Idempotent: the same
// report twice changes no row (updates are skipped when nothing differs). Instances missing from a
// report are marked stopped, never deleted; states pgherd set itself (fenced, needs rebuild) stay.
import { addressesOf, addressTakenElsewhere, HostBindingError } from '@/lib/fleet/host-binding';
import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { prepared, type Db } from '@/db/client';
import { servers } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { hashToken } from '@/lib/features/auth/api-tokens';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { MAX_REPORT_BYTES, readReport, type Report } from '@/lib/agent/report';

export const UNASSIGNED_ENVIRONMENT = 'unassigned';

const TOKEN = /^pgha_[A-Za-z0-9_-]{43}$/;

export interface AgentServer {
  id: number;
  hostname: string;
  address?: string;
  /** From the token lookup (read from the server's row by the statement when absent). */
  environment_id?: number;
}

/** Creates (or rotates: the old one stops working at once) a server's agent token; shown once. */
export async function createAgentToken(
  db: Db,
  serverId: number,
  actor: { id: number | null; username: string; remoteAddr?: string },
): Promise<string> {
  const token = `pgha_${randomBytes(32).toString('base64url')}`;
  // An agent speaks for its server's environment: no token for a server at another environment's host.
  const [where] = await db
    .select({ host: sql<string>`coalesce(nullif(${servers.address}, ''), ${servers.hostname})`, environmentId: servers.environmentId })
    .from(servers)
    .where(eq(servers.id, serverId));
  if (!where) throw new Error(`no server ${serverId}`);
  const elsewhere = await addressTakenElsewhere(db, where.environmentId, await addressesOf(where.host), serverId);
  if (elsewhere) throw new HostBindingError(elsewhere);
  await db.transaction(async (tx) => {
    const [server] = await tx
      .update(servers)
      .set({ agentTokenHash: hashToken(token) })
      .where(eq(servers.id, serverId))
      .returning({ hostname: servers.hostname, environmentId: servers.environmentId });
    if (!server) throw new Error(`no server ${serverId}`);
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'agent.token',
      objectType: 'servers',
      objectId: String(serverId),
      objectLabel: server.hostname,
      environmentId: server.environmentId,
      changes: { agentToken: ['(hidden)', '(new)'] },
    });
  });
  return token;
}

/** The server a bearer token speaks for, or null (unknown or rotated). */
export async function serverForToken(db: Db, token: string): Promise<AgentServer | null> {
  if (!TOKEN.test(token)) return null;
  const [s] = await prepared<AgentServer>(
    db,
    'pgherd_agent_token_v2',
    'SELECT id, hostname, address, environment_id FROM servers WHERE agent_token_hash = $1',
    [hashToken(token)],
  );
  return s ?? null;
}

/**
 * Whether a report's host name is the server its token names: the same name, or the same first label
 * where either side is unqualified ("db-1" reports for "db-1.example.com"), or the server's address.
 * A token file copied to another host is then refused instead of that host's instances overwriting
 * the server's.
 */
export function namesServer(server: AgentServer, reported: string): boolean {
  const norm = (h: string) => h.toLowerCase().replace(/\.$/, '');
  const a = norm(server.hostname);
  const b = norm(reported);
  if (a === b || (server.address && norm(server.address) === b)) return true;
  if (!a.includes('.') || !b.includes('.')) {
    const [aLabel = ''] = a.split('.');
    const [bLabel = ''] = b.split('.');
    return aLabel === bLabel && !/^\d+$/.test(aLabel);
  }
  return false;
}

export interface Received {
  status: number;
  body: { error: string; details: unknown } | ({ server: string } & IngestResult);
}

/**
 * A report request, from the bearer token to the answer: 401 without a current token, 413/400/422
 * for a report that is too large, not JSON or does not fit, 403 for a report from another host than
 * the token's server. A refused report writes nothing, not even the server's last report time.
 */
export async function receiveReport(
  db: Db,
  /** `text()` answers null once the body passes the cap (see lib/features/api/body.ts): it is not read further. */
  req: { authorization: string | null; contentLength: number; text: () => Promise<string | null> },
  write: (server: AgentServer, report: Report) => Promise<IngestResult> = (server, report) => ingestReport(db, server, report),
): Promise<Received> {
  const refuse = (status: number, error: string, details: unknown = null): Received => ({ status, body: { error, details } });
  const token = /^Bearer (\S+)$/.exec(req.authorization ?? '')?.[1];
  if (token === undefined) return refuse(401, 'authentication required: Authorization: Bearer <agent token>');
  const server = await serverForToken(db, token);
  if (!server) return refuse(401, 'unknown or rotated agent token');
  if (req.contentLength > MAX_REPORT_BYTES) return refuse(413, `a report is at most ${MAX_REPORT_BYTES} bytes`);
  const text = await req.text();
  if (text === null) return refuse(413, `a report is at most ${MAX_REPORT_BYTES} bytes`);
  const read = readReport(text);
  if (!read.ok) return refuse(read.status, read.error, read.details);
  if (!namesServer(server, read.report.hostname)) {
    return refuse(
      403,
      `this token belongs to ${server.hostname}, and the report comes from ${read.report.hostname}: a report can only speak for its own server (set "hostname" in the agent's configuration if the host calls itself otherwise)`,
    );
  }
  // A Patroni REST address is this server's own: a report never points pgherd (and its REST password) at another host.
  const foreign = read.report.instances.flatMap((i, n) =>
    i.patroni && !namesServer(server, new URL(i.patroni.restUrl).hostname)
      ? [
          {
            path: `instances.${String(n)}.patroni.restUrl`,
            message: `must be on this server (${server.hostname}${server.address ? ` or ${server.address}` : ''})`,
          },
        ]
      : [],
  );
  if (foreign.length) return refuse(422, 'invalid report: nothing was written', foreign);
  const result = await write(server, read.report);
  return { status: 200, body: { server: server.hostname, ...result } };
}

export interface IngestResult {
  /** Instances this report created, changed, and marked stopped. */
  created: number;
  updated: number;
  stopped: number;
  /** Herds created (unassigned) for system identifiers pgherd did not know. */
  herdsCreated: number;
  /** Instances held as conflicts (their system identifier is a herd's in another environment); absent when none. */
  held?: number;
}

const num = (l: string | null | undefined) => (l ? lsnToNumber(l) : null);

/**
 * The whole write for a batch of reports (each from a different server), one statement: each server's
 * last report time and interval; each running instance written into the herd of its system identifier
 * (role, upstream, LSN, lag against the herd's single running primary, timeline, pending restart;
 * updated when known, skipped when nothing differs, inserted when new: only a new instance takes a
 * value of the id sequence); an audit entry for each instance created; each server's other
 * instances marked stopped. When a system identifier names no herd it writes no instance and returns
 * those identifiers, for the caller to create their herds and run it again. Rows are written in
 * (server, port) order, so that two batches never wait on each other in opposite orders. Named, so
 * each connection parses and plans it once.
 * $1 the reports: [{ server_id, hostname, interval_seconds, observed_at, ports (running) }]
 * $2 their running instances: [{ server_id, port, data_directory, ... }]
 * $3 the servers' ids (an array, so that the planner reaches their rows by index)
 * The plan must not depend on fresh statistics (agents may add thousands of instances between two
 * autoanalyze runs): each lookup is shaped so that only its index can serve it.
 */
const INGEST_SQL = `
WITH batch AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(server_id int, hostname text, interval_seconds int, observed_at timestamptz, ports int[], load1 real)
), srv AS (
  UPDATE servers s SET last_seen_at = now(), (agent_interval_seconds, load_average, load_average_at) = (
    SELECT b.interval_seconds, b.load1, CASE WHEN b.load1 IS NULL THEN NULL ELSE least(b.observed_at, now()) END FROM batch b WHERE b.server_id = s.id)
  WHERE s.id = ANY ($3::int[]) RETURNING s.id
), rep AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(server_id int, server_env int, port int, data_directory text, pg_version int, sysid text, is_primary boolean, timeline int, lsn bigint, pending boolean, up_host text, up_port int)
), placed AS (
  -- Lateral with LIMIT (never flattened into a join): each herd by its index, where a join would hash
  -- the whole herds table for the few rows of a report. A herd in another environment than the
  -- reporting server's (the unassigned placeholder is nobody's) is a conflict: held, never merged.
  SELECT rep.*, h.id AS herd_id, h.environment_id,
         coalesce(h.environment_id <> coalesce(rep.server_env, (SELECT environment_id FROM servers WHERE id = rep.server_id))
                  AND h.environment_id IS DISTINCT FROM (SELECT id FROM environments WHERE name = $4), false) AS conflict
  FROM rep LEFT JOIN LATERAL (SELECT id, environment_id FROM herds WHERE system_identifier = rep.sysid LIMIT 1) h ON true
), unknown AS (
  SELECT DISTINCT sysid FROM placed WHERE herd_id IS NULL
), fact AS (
  SELECT f.*, b.observed_at, b.hostname, (CASE WHEN f.is_primary THEN 'primary' ELSE 'replica' END)::instance_role AS role,
    CASE WHEN f.is_primary THEN NULL ELSE (
      SELECT CASE WHEN count(*) = 1 THEN min(i.id) END FROM instances i JOIN servers s ON s.id = i.server_id
      WHERE i.port = f.up_port AND (s.address = f.up_host OR s.hostname = f.up_host)) END AS upstream_id,
    CASE WHEN f.is_primary THEN 0 ELSE (
      SELECT greatest(max(p.lsn) - f.lsn, 0) FROM instances p
      WHERE p.herd_id = f.herd_id AND p.role = 'primary' AND p.state = 'running' HAVING count(*) = 1) END AS lag -- instances_running_primary_idx
  FROM placed f JOIN batch b USING (server_id) WHERE NOT EXISTS (SELECT 1 FROM unknown) AND NOT f.conflict
), changed AS (
  -- The known instances whose facts differ from the report's, locked in (server, port) order (so that
  -- two batches never wait on each other in opposite orders). Known ones are updated, never upserted:
  -- INSERT ... ON CONFLICT takes a value of the id sequence for every row it is given, even one that
  -- only updates, and a fleet reporting every minute would use up any sequence (a report that changes
  -- nothing still came at the same cost).
  SELECT i.id, f.server_id, f.port FROM fact f JOIN instances i ON i.server_id = f.server_id AND i.port = f.port
  WHERE (i.herd_id, i.data_directory, i.pg_version, i.role, i.observed_role, i.upstream_instance_id, i.timeline, i.lsn, i.lag_bytes, i.pending_restart, i.last_observed_at)
        IS DISTINCT FROM (f.herd_id, f.data_directory, f.pg_version, f.role, f.role, f.upstream_id, f.timeline, f.lsn, coalesce(f.lag, i.lag_bytes), f.pending, f.observed_at)
     OR i.state NOT IN ('running', 'fenced', 'needs_rebuild')
  ORDER BY f.server_id, f.port
  FOR NO KEY UPDATE OF i
), updated AS (
  UPDATE instances i SET
    herd_id = f.herd_id, data_directory = f.data_directory, pg_version = f.pg_version, role = f.role, observed_role = f.role,
    upstream_instance_id = f.upstream_id,
    state = CASE WHEN i.state IN ('fenced', 'needs_rebuild') THEN i.state ELSE 'running'::instance_state END,
    timeline = f.timeline, lsn = f.lsn, lag_bytes = coalesce(f.lag, i.lag_bytes),
    pending_restart = f.pending, last_observed_at = f.observed_at, updated_at = now()
  FROM changed c JOIN fact f USING (server_id, port)
  WHERE i.id = c.id
  RETURNING i.id, i.server_id, i.port, i.role, i.data_directory, false AS created
), inserted AS (
  -- Only the instances the statement's snapshot does not know take an id. One that a concurrent report
  -- inserted meanwhile is updated with this report's facts instead (its value of the sequence is lost:
  -- only in that race).
  INSERT INTO instances AS i (herd_id, server_id, port, data_directory, pg_version, role, observed_role, upstream_instance_id, state, timeline, lsn, lag_bytes, pending_restart, last_observed_at)
  SELECT herd_id, server_id, port, data_directory, pg_version, role, role, upstream_id, 'running', timeline, lsn, lag, pending, observed_at
  FROM fact f WHERE NOT EXISTS (SELECT 1 FROM instances x WHERE x.server_id = f.server_id AND x.port = f.port)
  ORDER BY server_id, port
  ON CONFLICT (server_id, port) DO UPDATE SET
    herd_id = excluded.herd_id, data_directory = excluded.data_directory, pg_version = excluded.pg_version, role = excluded.role, observed_role = excluded.observed_role,
    upstream_instance_id = excluded.upstream_instance_id,
    state = CASE WHEN i.state IN ('fenced', 'needs_rebuild') THEN i.state ELSE 'running'::instance_state END,
    timeline = excluded.timeline, lsn = excluded.lsn, lag_bytes = coalesce(excluded.lag_bytes, i.lag_bytes),
    pending_restart = excluded.pending_restart, last_observed_at = excluded.last_observed_at, updated_at = now()
  RETURNING i.id, i.server_id, i.port, i.role, i.data_directory, (xmax = 0) AS created
), up AS (
  SELECT * FROM updated UNION ALL SELECT * FROM inserted
), stopped AS (
  -- What a report does not list as running is not running (stopped by hand, or gone): never deleted.
  -- By the (server, port) index: state is compared as text so that no plan reads the state index (all
  -- running instances) on a stale estimate.
  UPDATE instances i SET state = 'stopped', updated_at = now()
  WHERE i.server_id = ANY ($3::int[]) AND i.state::text IN ('running', 'unreachable') AND NOT EXISTS (SELECT 1 FROM unknown)
    AND i.port <> ALL (coalesce((SELECT b.ports FROM batch b WHERE b.server_id = i.server_id), '{}'::int[]))
  RETURNING i.server_id
), audited AS (
  INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
  SELECT NULL, 'agent:' || fact.hostname, '', 'agent.create', 'instances', up.id::text, fact.hostname || ':' || up.port, fact.environment_id,
         jsonb_build_object('role', jsonb_build_array(NULL, up.role), 'dataDirectory', jsonb_build_array(NULL, up.data_directory))
  FROM up JOIN fact USING (server_id, port) WHERE up.created
  RETURNING 1
)
SELECT b.server_id AS "serverId",
       (SELECT coalesce(array_agg(sysid), '{}') FROM unknown) AS unknown,
       (SELECT count(*) FILTER (WHERE created) FROM up WHERE up.server_id = b.server_id)::int AS created,
       (SELECT count(*) FILTER (WHERE NOT created) FROM up WHERE up.server_id = b.server_id)::int AS updated,
       (SELECT count(*) FROM stopped WHERE stopped.server_id = b.server_id)::int AS stopped,
       (SELECT coalesce(json_agg(json_build_object('server_id', p.server_id, 'port', p.port, 'sysid', p.sysid, 'herd_id', p.herd_id)), '[]')
          FROM placed p WHERE p.conflict AND p.server_id = b.server_id AND NOT EXISTS (SELECT 1 FROM unknown)) AS held
FROM batch b`;

type Conflict = { server_id: number; port: number; sysid: string; herd_id: number };

/**
 * What the agents say of Patroni, in one statement and only when a report says something: each
 * instance's REST address and scope, recorded as a proposal an admin accepts on the herd's page
 * (lib/agent/patroni-proposal.ts). A report never sets the address or the herd's control driver itself:
 * the address is where pgherd sends Patroni's credentials, and the driver decides what pgherd runs, so
 * a host (or whoever holds its agent's token) must not choose either. A proposal is audited as the
 * agent's when it changes; one already so (the address and the herd's scope as reported) is not made.
 */
async function recordPatroni(db: Db, items: { server: AgentServer; report: Report }[]): Promise<void> {
  const rows = items.flatMap(({ server, report }) =>
    report.instances.flatMap((i) =>
      i.state === 'running' && i.patroni
        ? [{ server_id: server.id, port: i.port, url: i.patroni.restUrl, scope: i.patroni.scope, hostname: server.hostname }]
        : [],
    ),
  );
  if (!rows.length) return;
  await db.execute(sql`
    WITH r AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(server_id int, port int, url text, scope text, hostname text)
    ), prop AS (
      UPDATE instances i SET patroni_proposed_url = r.url, patroni_proposed_scope = r.scope, updated_at = now()
      FROM r, instances old, herds h
      WHERE i.server_id = r.server_id AND i.port = r.port AND old.id = i.id AND h.id = i.herd_id
        AND (i.patroni_proposed_url, i.patroni_proposed_scope) IS DISTINCT FROM (r.url, r.scope)
        AND NOT (i.patroni_url = r.url AND h.control_driver = 'patroni' AND h.patroni_scope = r.scope)
      RETURNING i.id, i.herd_id, i.port, r.hostname, old.patroni_proposed_url AS was_url, old.patroni_proposed_scope AS was_scope, r.url, r.scope
    )
    INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
    SELECT NULL::int, 'agent:' || prop.hostname, '', 'agent.patroni_proposal', 'instances', prop.id::text, prop.hostname || ':' || prop.port,
           (SELECT environment_id FROM herds WHERE id = prop.herd_id),
           jsonb_build_object('patroniProposedUrl', jsonb_build_array(nullif(prop.was_url, ''), prop.url),
                              'patroniProposedScope', jsonb_build_array(nullif(prop.was_scope, ''), prop.scope))
    FROM prop`);
}

/**
 * A staging host must not add members to a production herd: such instances are held (agent_conflicts)
 * instead of merged, each audited once, in the herd's environment, when first seen; the fleet health
 * panel lists them while their agent reports them.
 */
async function holdConflicts(db: Db, conflicts: Conflict[]): Promise<void> {
  await db.execute(sql`
    WITH held AS (
      INSERT INTO agent_conflicts AS c (server_id, port, system_identifier, herd_id)
      SELECT server_id, port, sysid, herd_id FROM jsonb_to_recordset(${JSON.stringify(conflicts)}::jsonb) AS r(server_id int, port int, sysid text, herd_id int)
      ORDER BY server_id, port
      ON CONFLICT (server_id, port, system_identifier) DO UPDATE SET last_seen_at = now(), herd_id = excluded.herd_id
      RETURNING c.server_id, c.port, c.system_identifier, c.herd_id, (xmax = 0) AS created)
    INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
    SELECT NULL, 'agent:' || s.hostname, '', 'agent.conflict', 'herds', held.herd_id::text, s.hostname || ':' || held.port, h.environment_id,
           jsonb_build_object('systemIdentifier', jsonb_build_array(NULL, held.system_identifier),
                              'heldFrom', jsonb_build_array(NULL, e.name || '/' || h.name || ' (reported by ' || s.hostname || ', in ' || se.name || ')'))
    FROM held JOIN servers s ON s.id = held.server_id JOIN environments se ON se.id = s.environment_id
    JOIN herds h ON h.id = held.herd_id JOIN environments e ON e.id = h.environment_id
    WHERE held.created`);
}

/** A herd for a system identifier no herd has: `pg-<sysid>` in the reserved environment, audited. False when another report made it first. */
async function createHerd(db: Db, server: AgentServer, report: Report, sysid: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.execute(
      sql`INSERT INTO environments (name, description) VALUES (${UNASSIGNED_ENVIRONMENT}, 'Herds the agents found that no one has placed yet: move each to its environment.') ON CONFLICT (name) DO NOTHING`,
    );
    const version = report.instances.find((i) => i.systemIdentifier === sysid)?.majorVersion;
    if (version === undefined)
      throw new Error(`createHerd: the report from ${server.hostname} has no instance with system identifier ${sysid}`);
    const {
      rows: [herd],
    } = await tx.execute<{ id: number; env: number }>(sql`
      INSERT INTO herds (environment_id, name, system_identifier, pg_version, description)
      SELECT e.id, ${`pg-${sysid}`}, ${sysid}, ${version}, ${`Found by the agent on ${server.hostname}.`}
      FROM environments e WHERE e.name = ${UNASSIGNED_ENVIRONMENT}
      ON CONFLICT (system_identifier) DO NOTHING RETURNING id, environment_id AS env`);
    if (!herd) return false;
    await writeAudit(tx, {
      user: { id: null, username: `agent:${server.hostname}` },
      action: 'agent.create',
      objectType: 'herds',
      objectId: String(herd.id),
      objectLabel: `${UNASSIGNED_ENVIRONMENT}/pg-${sysid}`,
      environmentId: herd.env,
      changes: { systemIdentifier: [null, sysid] },
    });
    return true;
  });
}

/** One report: see ingestReports. */
export async function ingestReport(db: Db, server: AgentServer, report: Report): Promise<IngestResult> {
  const [result] = await ingestReports(db, [{ server, report }]);
  if (!result) throw new Error(`ingestReport: no result for server ${server.hostname}`);
  return result;
}

/**
 * Reports from different servers written together (the ingest queue batches the reports that arrive
 * while a write is in progress): one statement for all of them, plus, when a report names a system
 * identifier no herd has, a transaction that creates those herds before the statement runs again.
 */
export async function ingestReports(db: Db, items: { server: AgentServer; report: Report }[]): Promise<IngestResult[]> {
  if (new Set(items.map((i) => i.server.id)).size !== items.length) throw new Error('one report a server in a batch');
  const batch = items.map(({ server, report }) => ({
    server_id: server.id,
    hostname: server.hostname,
    interval_seconds: report.intervalSeconds,
    observed_at: report.observedAt,
    load1: report.loadAverage?.[0] ?? null,
    ports: report.instances.filter((i) => i.state === 'running').map((i) => i.port),
  }));
  const facts = items.flatMap(({ server, report }) =>
    report.instances
      .filter((i) => i.state === 'running')
      .map((i) => ({
        server_id: server.id,
        server_env: server.environment_id ?? null,
        port: i.port,
        data_directory: i.dataDirectory,
        pg_version: i.majorVersion,
        sysid: i.systemIdentifier,
        is_primary: !i.inRecovery,
        timeline: i.timeline,
        lsn: i.inRecovery ? num(i.replayedLsn) : num(i.currentLsn),
        pending: i.pendingRestart.length > 0,
        up_host: i.inRecovery ? (i.upstream?.host ?? null) : null,
        up_port: i.inRecovery ? (i.upstream?.port ?? null) : null,
      })),
  );
  const args = [JSON.stringify(batch), JSON.stringify(facts), items.map((i) => i.server.id), UNASSIGNED_ENVIRONMENT];
  type Row = { serverId: number; unknown: string[]; created: number; updated: number; stopped: number; held: Conflict[] };
  let rows = await prepared<Row>(db, 'pgherd_agent_ingest_v4', INGEST_SQL, args);
  const herdsCreated = new Map<number, number>();
  if (rows[0]?.unknown.length) {
    // Each new herd is counted for the first report that names it.
    for (const sysid of rows[0].unknown) {
      const first = items.find(({ report }) => report.instances.some((i) => i.systemIdentifier === sysid));
      if (!first) throw new Error(`ingestReports: the statement named system identifier ${sysid}, which no report of the batch has`);
      if (await createHerd(db, first.server, first.report, sysid))
        herdsCreated.set(first.server.id, (herdsCreated.get(first.server.id) ?? 0) + 1);
    }
    rows = await prepared<Row>(db, 'pgherd_agent_ingest_v4', INGEST_SQL, args);
    if (rows[0]?.unknown.length) throw new Error(`no herd for system identifier(s) ${rows[0].unknown.join(', ')}`);
  }
  await recordPatroni(db, items);
  // Instances whose system identifier is a herd's in another environment were left out by the statement;
  // recorded after it stamped each server's last report (the health panel shows what its latest one held).
  const conflicts = rows.flatMap((r) => r.held);
  const held = new Map<number, number>();
  for (const c of conflicts) held.set(c.server_id, (held.get(c.server_id) ?? 0) + 1);
  if (conflicts.length) await holdConflicts(db, conflicts);
  const byServer = new Map(rows.map((r) => [r.serverId, r]));
  return items.map(({ server }) => {
    const r = byServer.get(server.id);
    if (!r) throw new Error(`ingestReports: the statement returned no row for server ${server.hostname}`);
    const h = held.get(server.id) ?? 0;
    return {
      created: r.created,
      updated: r.updated,
      stopped: r.stopped,
      herdsCreated: herdsCreated.get(server.id) ?? 0,
      ...(h ? { held: h } : {}),
    };
  });
}
