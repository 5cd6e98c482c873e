// A validated report, written into the inventory in one statement. The server decides what the
// facts mean: the herd is the one with the instance's system identifier (every member of a
// replication herd shares it; an unknown one gets a new herd in the "unassigned" environment for an
// admin to place), the role comes from pg_is_in_recovery(), the upstream is the instance that listens
// where the replica streams from, the lag is measured against the herd's primary. Idempotent: the same
// report twice changes no row (updates are skipped when nothing differs). Instances missing from a
// report are observed over Postgres, whose answer sets their state (never deleted); states pgherd set
// itself (fenced, needs rebuild) stay.
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { addressesOf, addressTakenElsewhere, HostBindingError } from '@/lib/fleet/host-binding';
import { randomBytes } from 'node:crypto';
import { eq, inArray, sql } from 'drizzle-orm';
import { prepared, withParams, type Db } from '@/db/client';
import { instances, servers } from '@/db/schema';
import { refreshFleet } from '@/lib/fleet/refresher';
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

/** At most this many data directories are told back to an agent (ingest.sql's LIMIT). */
export const MAX_KNOWN_DIRECTORIES = 64;

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
  /** Instances this report created, changed, and (missing from it) found stopped over Postgres. */
  created: number;
  updated: number;
  stopped: number;
  /** Herds created (unassigned) for system identifiers pgherd did not know. */
  herdsCreated: number;
  /** Instances held as conflicts (their system identifier is a herd's in another environment); absent when none. */
  held?: number;
  /**
   * The data directories of the instances pgherd has on record on the server (those it made there, a
   * blue/green upgrade's green, included): its agent looks for their lock files too, so that a cluster
   * whose socket directory it does not watch is still reported.
   */
  dataDirectories: string[];
}

const num = (l: string | null | undefined) => (l ? lsnToNumber(l) : null);

/**
 * The whole write for a batch of reports (each from a different server), one statement: each server's
 * last report time and interval; each running instance written into the herd of its system identifier
 * (role, upstream, LSN, lag against the herd's single running primary, timeline, pending restart;
 * updated when known, skipped when nothing differs, inserted when new: only a new instance takes a
 * value of the id sequence); an audit entry for each instance created; each server's other
 * instances returned, for the caller to observe over Postgres. When a system identifier names no herd it writes no instance and returns
 * those identifiers, for the caller to create their herds and run it again. Rows are written in
 * (server, port) order, so that two batches never wait on each other in opposite orders. Named, so
 * each connection parses and plans it once.
 * $1 the reports: [{ server_id, hostname, interval_seconds, observed_at, ports (running) }]
 * $2 their running instances: [{ server_id, port, data_directory, ... }]
 * $3 the servers' ids (an array, so that the planner reaches their rows by index)
 * The plan must not depend on fresh statistics (agents may add thousands of instances between two
 * autoanalyze runs): each lookup is shaped so that only its index can serve it.
 */
const INGEST_SQL = sqlFile('lib/features/agents/ingest.sql');

type Conflict = { server_id: number; port: number; sysid: string; herd_id: number };

/**
 * What the agents say of Patroni, in one statement and only when a report says something: each
 * instance's REST address and scope, recorded as a proposal an admin accepts on the herd's page
 * (acceptPatroniProposal). A report never sets the address or the herd's control driver itself:
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
  await db.execute(withParams(sqlFile('lib/features/agents/patroni-proposals.sql'), [JSON.stringify(rows)]));
}

/**
 * A staging host must not add members to a production herd: such instances are held (agent_conflicts)
 * instead of merged, each audited once, in the herd's environment, when first seen; the fleet health
 * panel lists them while their agent reports them.
 */
async function holdConflicts(db: Db, conflicts: Conflict[]): Promise<void> {
  await db.execute(withParams(sqlFile('lib/features/agents/hold-conflicts.sql'), [JSON.stringify(conflicts)]));
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
 * The filesystems each running instance's agent reported: the reading replaced, and the hour's sample
 * made by the hour's first report (the days-to-full risk's growth; lib/features/risks). An instance
 * the inventory does not have (yet) is left out.
 */
async function recordDisks(db: Db, items: { server: AgentServer; report: Report }[]): Promise<void> {
  const rows = items.flatMap(({ server, report }) =>
    report.instances.flatMap((i) =>
      i.state === 'running' && i.disk
        ? [
            {
              server_id: server.id,
              port: i.port,
              data_free: i.disk.data.freeBytes,
              data_total: i.disk.data.totalBytes,
              wal_free: i.disk.wal?.freeBytes ?? null,
              wal_total: i.disk.wal?.totalBytes ?? null,
              data_mount: i.disk.data.mountPoint
                ? {
                    mountPoint: i.disk.data.mountPoint,
                    ...(i.disk.data.device ? { device: i.disk.data.device } : {}),
                    ...(i.disk.data.fsType ? { fsType: i.disk.data.fsType } : {}),
                    ...(i.disk.data.volumeId ? { volumeId: i.disk.data.volumeId } : {}),
                  }
                : null,
            },
          ]
        : [],
    ),
  );
  if (!rows.length) return;
  await db.execute(sql`
    WITH r AS (
      SELECT i.id, x.data_free, x.data_total, x.wal_free, x.wal_total, x.data_mount
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS x(server_id int, port int, data_free bigint, data_total bigint, wal_free bigint, wal_total bigint, data_mount jsonb)
      JOIN instances i ON i.server_id = x.server_id AND i.port = x.port),
    kept AS (
      INSERT INTO disk_readings (instance_id, data_free, data_total, wal_free, wal_total, data_mount, read_at)
      SELECT id, data_free, data_total, wal_free, wal_total, data_mount, now() FROM r
      ON CONFLICT (instance_id) DO UPDATE SET data_free = EXCLUDED.data_free, data_total = EXCLUDED.data_total,
        wal_free = EXCLUDED.wal_free, wal_total = EXCLUDED.wal_total, data_mount = EXCLUDED.data_mount, read_at = EXCLUDED.read_at)
    INSERT INTO disk_samples (instance_id, hour, data_used, wal_used)
    SELECT id, date_trunc('hour', now()), data_total - data_free, wal_total - wal_free FROM r
    ON CONFLICT (instance_id, hour) DO NOTHING`);
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
    memory_mb: report.memoryMb ?? null,
    cpus: report.cpus ?? null,
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
        vnum: i.serverVersionNum ?? null,
        bin_dir: i.binDir ?? null,
        conf_at: i.confLoadedAt ?? null,
      })),
  );
  const args = [JSON.stringify(batch), JSON.stringify(facts), items.map((i) => i.server.id), UNASSIGNED_ENVIRONMENT];
  type Row = {
    serverId: number;
    unknown: string[];
    created: number;
    updated: number;
    silent: string[];
    held: Conflict[];
    dataDirectories: string[];
  };
  let rows = await prepared<Row>(db, 'pgherd_agent_ingest_v8', INGEST_SQL, args);
  const herdsCreated = new Map<number, number>();
  if (rows[0]?.unknown.length) {
    // Each new herd is counted for the first report that names it.
    for (const sysid of rows[0].unknown) {
      const first = items.find(({ report }) => report.instances.some((i) => i.systemIdentifier === sysid));
      if (!first) throw new Error(`ingestReports: the statement named system identifier ${sysid}, which no report of the batch has`);
      if (await createHerd(db, first.server, first.report, sysid))
        herdsCreated.set(first.server.id, (herdsCreated.get(first.server.id) ?? 0) + 1);
    }
    rows = await prepared<Row>(db, 'pgherd_agent_ingest_v8', INGEST_SQL, args);
    if (rows[0]?.unknown.length) throw new Error(`no herd for system identifier(s) ${rows[0].unknown.join(', ')}`);
  }
  await recordPatroni(db, items);
  await recordBuilds(db, items);
  await recordDisks(db, items);
  // Instances whose system identifier is a herd's in another environment were left out by the statement;
  // recorded after it stamped each server's last report (the health panel shows what its latest one held).
  const conflicts = rows.flatMap((r) => r.held);
  const held = new Map<number, number>();
  for (const c of conflicts) held.set(c.server_id, (held.get(c.server_id) ?? 0) + 1);
  if (conflicts.length) await holdConflicts(db, conflicts);
  // An agent's silence about an instance is not "stopped": what Postgres answers decides (the refresh's
  // reading: refused, stopped; answering, running; neither, unreachable), as for every other instance.
  const silent = rows.flatMap((r) => r.silent.map(Number));
  const stoppedNow = new Set<number>();
  if (silent.length) {
    await refreshFleet(db, { ids: silent });
    for (const r of await db.select({ id: instances.id, state: instances.state }).from(instances).where(inArray(instances.id, silent)))
      if (r.state === 'stopped') stoppedNow.add(r.id);
  }
  const byServer = new Map(rows.map((r) => [r.serverId, r]));
  return items.map(({ server }) => {
    const r = byServer.get(server.id);
    if (!r) throw new Error(`ingestReports: the statement returned no row for server ${server.hostname}`);
    const h = held.get(server.id) ?? 0;
    return {
      created: r.created,
      updated: r.updated,
      stopped: r.silent.filter((id) => stoppedNow.has(Number(id))).length,
      herdsCreated: herdsCreated.get(server.id) ?? 0,
      ...(h ? { held: h } : {}),
      dataDirectories: r.dataDirectories,
    };
  });
}

/**
 * The builds each report lists replace what its server had on record (a report without the list, from
 * an older agent, leaves them). One statement for the batch.
 */
async function recordBuilds(db: Db, items: { server: AgentServer; report: Report }[]): Promise<void> {
  const listed = items.filter((i) => i.report.builds !== undefined);
  if (!listed.length) return;
  const rows = listed.flatMap(({ server, report }) =>
    (report.builds ?? []).map((b) => ({
      server_id: server.id,
      bin_dir: b.binDir,
      version_num: b.versionNum,
      version_text: b.versionText,
      extensions: b.extensions,
    })),
  );
  await db.execute(
    withParams(sqlFile('lib/features/agents/record-builds.sql'), [JSON.stringify(rows), JSON.stringify(listed.map((i) => i.server.id))]),
  );
}
