// A validated report, written into the inventory in one transaction. The server decides what the
// facts mean: the herd is the one with the instance's system identifier (every member of a
// replication herd shares it; an unknown one gets a new herd in the "unassigned" environment for an
// admin to place), the role comes from pg_is_in_recovery(), the upstream is the instance that listens
// where the replica streams from, the lag is measured against the herd's primary. Idempotent: the same
// report twice changes no row (updates are skipped when nothing differs). Instances missing from a
// report are marked stopped, never deleted; states pgherd set itself (fenced, needs rebuild) stay.
import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { servers } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { hashToken } from '@/lib/auth/api-tokens';
import { lsnToNumber } from '@/lib/inventory/lsn';
import { MAX_REPORT_BYTES, readReport, type Report } from './report';

export const UNASSIGNED_ENVIRONMENT = 'unassigned';

const TOKEN = /^pgha_[A-Za-z0-9_-]{43}$/;

export interface AgentServer {
  id: number;
  hostname: string;
  address?: string;
}

/** Creates (or rotates: the old one stops working at once) a server's agent token; shown once. */
export async function createAgentToken(db: Db, serverId: number, actor: { id: number | null; username: string; remoteAddr?: string }): Promise<string> {
  const token = `pgha_${randomBytes(32).toString('base64url')}`;
  await db.transaction(async (tx) => {
    const rows = await tx.update(servers).set({ agentTokenHash: hashToken(token) }).where(eq(servers.id, serverId))
      .returning({ hostname: servers.hostname, environmentId: servers.environmentId });
    if (!rows.length) throw new Error(`no server ${serverId}`);
    await writeAudit(tx, {
      user: actor, remoteAddr: actor.remoteAddr, action: 'agent.token', objectType: 'servers', objectId: String(serverId),
      objectLabel: rows[0].hostname, environmentId: rows[0].environmentId, changes: { agentToken: ['(hidden)', '(new)'] },
    });
  });
  return token;
}

/** The server a bearer token speaks for, or null (unknown or rotated). */
export async function serverForToken(db: Db, token: string): Promise<AgentServer | null> {
  if (!TOKEN.test(token)) return null;
  const [s] = await db.select({ id: servers.id, hostname: servers.hostname, address: servers.address }).from(servers).where(eq(servers.agentTokenHash, hashToken(token)));
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
  if (!a.includes('.') || !b.includes('.')) return a.split('.')[0] === b.split('.')[0] && !/^\d+$/.test(a.split('.')[0]);
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
export async function receiveReport(db: Db, req: { authorization: string | null; contentLength: number; text: () => Promise<string> }): Promise<Received> {
  const refuse = (status: number, error: string, details: unknown = null): Received => ({ status, body: { error, details } });
  const m = /^Bearer (\S+)$/.exec(req.authorization ?? '');
  if (!m) return refuse(401, 'authentication required: Authorization: Bearer <agent token>');
  const server = await serverForToken(db, m[1]);
  if (!server) return refuse(401, 'unknown or rotated agent token');
  if (req.contentLength > MAX_REPORT_BYTES) return refuse(413, `a report is at most ${MAX_REPORT_BYTES} bytes`);
  const read = readReport(await req.text());
  if (!read.ok) return refuse(read.status, read.error, read.details);
  if (!namesServer(server, read.report.hostname)) {
    return refuse(403, `this token belongs to ${server.hostname}, and the report comes from ${read.report.hostname}: a report can only speak for its own server (set "hostname" in the agent's configuration if the host calls itself otherwise)`);
  }
  const result = await ingestReport(db, server, read.report);
  return { status: 200, body: { server: server.hostname, ...result } };
}

export interface IngestResult {
  /** Instances this report created, changed, and marked stopped. */
  created: number;
  updated: number;
  stopped: number;
  /** Herds created (unassigned) for system identifiers pgherd did not know. */
  herdsCreated: number;
}

const num = (l: string | null | undefined) => (l ? lsnToNumber(l) : null);

export async function ingestReport(db: Db, server: AgentServer, report: Report): Promise<IngestResult> {
  return db.transaction(async (tx) => {
    const result: IngestResult = { created: 0, updated: 0, stopped: 0, herdsCreated: 0 };
    const agent = { id: null, username: `agent:${server.hostname}` };
    // One report per server at a time: two reports racing would mark each other's instances.
    await tx.execute(sql`SELECT 1 FROM servers WHERE id = ${server.id} FOR UPDATE`);
    await tx.execute(sql`UPDATE servers SET last_seen_at = now(), agent_interval_seconds = ${report.intervalSeconds} WHERE id = ${server.id}`);

    const running = report.instances.filter((i) => i.state === 'running');
    const sysids = [...new Set(running.map((i) => i.systemIdentifier!))];
    const herdOf = new Map<string, number>();
    if (sysids.length) {
      const known = await tx.execute<{ id: number; sysid: string }>(sql`SELECT id, system_identifier AS sysid FROM herds WHERE system_identifier IN (${sql.join(sysids.map((s) => sql`${s}`), sql`, `)})`);
      for (const h of known.rows) herdOf.set(h.sysid, h.id);
    }
    for (const sysid of sysids.filter((s) => !herdOf.has(s))) {
      await tx.execute(sql`INSERT INTO environments (name, description) VALUES (${UNASSIGNED_ENVIRONMENT}, 'Herds the agents found that no one has placed yet: move each to its environment.') ON CONFLICT (name) DO NOTHING`);
      const made = await tx.execute<{ id: number; env: number }>(sql`
        INSERT INTO herds (environment_id, name, system_identifier, pg_version, description)
        SELECT e.id, ${`pg-${sysid}`}, ${sysid}, ${running.find((i) => i.systemIdentifier === sysid)!.majorVersion}, ${`Found by the agent on ${server.hostname}.`}
        FROM environments e WHERE e.name = ${UNASSIGNED_ENVIRONMENT}
        ON CONFLICT (system_identifier) DO NOTHING RETURNING id, environment_id AS env`);
      if (made.rows.length) {
        result.herdsCreated++;
        herdOf.set(sysid, made.rows[0].id);
        await writeAudit(tx, { user: agent, action: 'agent.create', objectType: 'herds', objectId: String(made.rows[0].id), objectLabel: `${UNASSIGNED_ENVIRONMENT}/pg-${sysid}`, environmentId: made.rows[0].env, changes: { systemIdentifier: [null, sysid] } });
      } else {
        // Another server's report created it a moment ago.
        const again = await tx.execute<{ id: number }>(sql`SELECT id FROM herds WHERE system_identifier = ${sysid}`);
        herdOf.set(sysid, again.rows[0].id);
      }
    }

    // Upstreams: the instance listening where each replica streams from (by address or host name).
    const upstreamOf = new Map<number, number | null>();
    for (const i of running) {
      if (!i.upstream) continue;
      const u = await tx.execute<{ id: number }>(sql`
        SELECT i.id FROM instances i JOIN servers s ON s.id = i.server_id
        WHERE i.port = ${i.upstream.port} AND (s.address = ${i.upstream.host} OR s.hostname = ${i.upstream.host}) LIMIT 2`);
      upstreamOf.set(i.port, u.rows.length === 1 ? u.rows[0].id : null);
    }

    const observedAt = new Date(report.observedAt);
    for (const i of running) {
      const role = i.inRecovery ? 'replica' : 'primary';
      const lsn = i.inRecovery ? num(i.replayedLsn) : num(i.currentLsn);
      const up = i.inRecovery ? upstreamOf.get(i.port) ?? null : null;
      const pending = i.pendingRestart.length > 0;
      const row = await tx.execute<{ created: boolean }>(sql`
        INSERT INTO instances (herd_id, server_id, port, data_directory, pg_version, role, upstream_instance_id, state, timeline, lsn, pending_restart, last_observed_at)
        VALUES (${herdOf.get(i.systemIdentifier!)!}, ${server.id}, ${i.port}, ${i.dataDirectory}, ${i.majorVersion}, ${role}, ${up}, 'running', ${i.timeline!}, ${lsn}, ${pending}, ${observedAt})
        ON CONFLICT (server_id, port) DO UPDATE SET
          herd_id = excluded.herd_id, data_directory = excluded.data_directory, pg_version = excluded.pg_version, role = excluded.role,
          upstream_instance_id = excluded.upstream_instance_id,
          state = CASE WHEN instances.state IN ('fenced', 'needs_rebuild') THEN instances.state ELSE 'running'::instance_state END,
          timeline = excluded.timeline, lsn = excluded.lsn, pending_restart = excluded.pending_restart,
          last_observed_at = excluded.last_observed_at, updated_at = now()
        WHERE (instances.herd_id, instances.data_directory, instances.pg_version, instances.role, instances.upstream_instance_id, instances.timeline, instances.lsn, instances.pending_restart, instances.last_observed_at)
              IS DISTINCT FROM (excluded.herd_id, excluded.data_directory, excluded.pg_version, excluded.role, excluded.upstream_instance_id, excluded.timeline, excluded.lsn, excluded.pending_restart, excluded.last_observed_at)
           OR instances.state NOT IN ('running', 'fenced', 'needs_rebuild')
        RETURNING (xmax = 0) AS created, id`);
      const r = row.rows[0] as { created: boolean; id: number } | undefined;
      if (!r) continue;
      if (r.created) {
        result.created++;
        await writeAudit(tx, { user: agent, action: 'agent.create', objectType: 'instances', objectId: String(r.id), objectLabel: `${server.hostname}:${i.port}`, changes: { role: [null, role], dataDirectory: [null, i.dataDirectory] } });
      } else {
        result.updated++;
      }
    }

    // What the report does not list as running is not running (stopped by hand, or gone): never deleted.
    const runningPorts = running.map((i) => i.port);
    const stopped = await tx.execute(sql`
      UPDATE instances SET state = 'stopped', updated_at = now()
      WHERE server_id = ${server.id} AND state IN ('running', 'unreachable')
        ${runningPorts.length ? sql`AND port NOT IN (${sql.join(runningPorts.map((p) => sql`${p}`), sql`, `)})` : sql``}`);
    result.stopped = stopped.rowCount ?? 0;

    // Lag against the herd's primary, for the replicas this report wrote (only where there is one primary).
    await tx.execute(sql`
      UPDATE instances r SET lag_bytes = greatest(p.lsn - r.lsn, 0), updated_at = now()
      FROM (SELECT herd_id, max(lsn) AS lsn FROM instances WHERE role = 'primary' AND state = 'running' GROUP BY herd_id HAVING count(*) = 1) p
      WHERE r.herd_id = p.herd_id AND r.server_id = ${server.id} AND r.role = 'replica' AND r.lsn IS NOT NULL
        AND r.lag_bytes IS DISTINCT FROM greatest(p.lsn - r.lsn, 0)`);
    await tx.execute(sql`
      UPDATE instances SET lag_bytes = 0, updated_at = now()
      WHERE server_id = ${server.id} AND role = 'primary' AND lag_bytes IS DISTINCT FROM 0`);
    return result;
  });
}
