// What the refresh reads for the fleet's risks (lib/features/risks), on the session it keeps with each
// instance, at most every PGHERD_RISKS_READ_MS: one statement over catalogues every role with pg_monitor
// may read (pg_database, pg_replication_slots, pg_stat_activity, a few settings), and the server's
// certificate as a TLS handshake of its own shows it (cert-probe.ts: no login).
import type pg from 'pg';
import { probeCertificate, type SeenCertificate } from './cert-probe';
import { SESSION_FLOOR_SECONDS } from './thresholds';

export interface DatabaseAges {
  name: string;
  /** age(datfrozenxid): transactions since the oldest unfrozen one. */
  xidAge: number;
  /** mxid_age(datminmxid). */
  mxidAge: number;
  /** datallowconn: false for template0, which autovacuum freezes (nothing else can connect to it). */
  allowConn?: boolean;
}

export interface SlotReading {
  name: string;
  type: 'physical' | 'logical';
  active: boolean;
  /** The process streaming from it (null: none). */
  activePid: number | null;
  database: string | null;
  /** reserved, extended, unreserved or lost (pg_replication_slots.wal_status); null before 13. */
  walStatus: string | null;
  /** Bytes that can still be written before the slot loses its WAL (max_slot_wal_keep_size); null: no bound. */
  safeWalSize: number | null;
  /** Bytes of WAL it keeps from being removed (current position - restart_lsn). */
  retained: number | null;
  /** Logical: bytes the consumer has not confirmed (current position - confirmed_flush_lsn). */
  behind: number | null;
  /** age(xmin), age(catalog_xmin): what the slot holds back from vacuum. */
  xminAge: number | null;
  catalogXminAge: number | null;
}

export interface SessionReading {
  pid: number;
  user: string | null;
  database: string | null;
  state: string | null;
  application: string;
  client: string | null;
  /** How long its transaction has been open, and how long it has been in its state. */
  xactSeconds: number;
  stateSeconds: number | null;
  /** The age of its transaction ID or snapshot, the older: how far back it holds vacuum (null: it holds nothing). */
  xminAge: number | null;
  /** When the backend started: with the pid, names this session and no other. */
  backendStart: string;
}

export interface RiskReading {
  freezeMaxAge: number;
  multixactFreezeMaxAge: number;
  dataChecksums: boolean;
  fsync: boolean;
  fullPageWrites: boolean;
  databases: DatabaseAges[];
  slots: SlotReading[];
  /** The oldest open transactions (those open 10 s or more): the five open longest, and the five holding vacuum back the furthest. */
  sessions: SessionReading[];
  /** When the server's certificate expires, as a TLS handshake saw it at the reading (null: no TLS, or not answered). */
  certificateNotAfter: string | null;
  /** The certificate's subject (its CN), for the finding's words. */
  certificateSubject: string | null;
}

/** The statement: a primary's and a replica's alike (a replica's positions are its replay's). */
export const RISK_SQL = `
SELECT json_build_object(
  'freezeMaxAge', current_setting('autovacuum_freeze_max_age')::bigint,
  'multixactFreezeMaxAge', current_setting('autovacuum_multixact_freeze_max_age')::bigint,
  'dataChecksums', current_setting('data_checksums') = 'on',
  'fsync', current_setting('fsync') = 'on',
  'fullPageWrites', current_setting('full_page_writes') = 'on',
  'databases', (SELECT coalesce(json_agg(json_build_object('name', datname, 'xidAge', age(datfrozenxid),
                  'mxidAge', mxid_age(datminmxid), 'allowConn', datallowconn) ORDER BY age(datfrozenxid) DESC), '[]') FROM pg_database),
  'slots', (SELECT coalesce(json_agg(json_build_object('name', slot_name, 'type', slot_type, 'active', active,
                  'activePid', active_pid, 'database', database, 'walStatus', wal_status, 'safeWalSize', safe_wal_size,
                  'retained', (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END) - restart_lsn,
                  'behind', CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() - confirmed_flush_lsn END,
                  'xminAge', age(xmin), 'catalogXminAge', age(catalog_xmin)) ORDER BY slot_name), '[]')
              FROM pg_replication_slots),
  'sessions', (SELECT coalesce(json_agg(json_build_object('pid', pid, 'user', usename, 'database', datname, 'state', state,
                  'application', application_name, 'client', client_addr::text,
                  'xactSeconds', extract(epoch FROM now() - xact_start)::float8,
                  'stateSeconds', extract(epoch FROM now() - state_change)::float8,
                  'xminAge', greatest(age(backend_xid), age(backend_xmin)),
                  'backendStart', backend_start) ORDER BY xact_start), '[]')
              -- The five open longest and the five holding vacuum back the furthest: idle sessions that hold
              -- nothing must not hide the one that does. Never their statements: another role's query text
              -- (a password in an ALTER ROLE) is not for every viewer of the risks.
              FROM (SELECT DISTINCT ON (pid) * FROM (
                      (SELECT * FROM pg_stat_activity
                       WHERE xact_start < now() - interval '${String(SESSION_FLOOR_SECONDS)} seconds'
                         AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                       ORDER BY xact_start LIMIT 5)
                      UNION ALL
                      (SELECT * FROM pg_stat_activity
                       WHERE xact_start < now() - interval '${String(SESSION_FLOOR_SECONDS)} seconds'
                         AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                         AND coalesce(backend_xid, backend_xmin) IS NOT NULL
                       ORDER BY greatest(age(backend_xid), age(backend_xmin)) DESC LIMIT 5)) both_ ORDER BY pid) a)
) AS r`;

type Raw = Omit<RiskReading, 'certificateNotAfter' | 'certificateSubject'>;

/** bigint and numeric columns come as JSON numbers (exact below 2^53: ages and byte counts are). */
const num = (x: unknown): number | null => (x === null || x === undefined ? null : Number(x));

function parse(raw: Raw): Omit<RiskReading, 'certificateNotAfter' | 'certificateSubject'> {
  return {
    freezeMaxAge: raw.freezeMaxAge,
    multixactFreezeMaxAge: raw.multixactFreezeMaxAge,
    dataChecksums: raw.dataChecksums,
    fsync: raw.fsync,
    fullPageWrites: raw.fullPageWrites,
    databases: raw.databases.map((d) => ({ name: d.name, xidAge: d.xidAge, mxidAge: d.mxidAge, allowConn: d.allowConn })),
    slots: raw.slots.map((s) => ({
      ...s,
      safeWalSize: num(s.safeWalSize),
      retained: num(s.retained),
      behind: num(s.behind),
      xminAge: num(s.xminAge),
      catalogXminAge: num(s.catalogXminAge),
    })),
    sessions: raw.sessions.map((s) => ({ ...s, xminAge: num(s.xminAge) })),
  };
}

/**
 * Reads the risks over an open session (throws when the session fails), and the server's certificate
 * with a handshake of its own (probeCertificate: the session's is the one it was opened with).
 */
export async function readRisks(
  c: pg.Client,
  e: { host: string; port: number },
  timeoutMs = 3000,
  /** The certificate as a recent handshake saw it (the caller's cache): no handshake of this reading's. */
  known?: SeenCertificate | null,
): Promise<RiskReading> {
  const [res, cert] = await Promise.all([
    c.query<{ r: Raw }>(RISK_SQL),
    known !== undefined ? known : probeCertificate(e, timeoutMs).catch(() => null),
  ]);
  const row = res.rows[0];
  if (!row) throw new Error('the risks query returned no row');
  return { ...parse(row.r), certificateNotAfter: cert?.notAfter ?? null, certificateSubject: cert?.subject ?? null };
}
