// What an instance really is right now, read over a Postgres connection: the result of every
// action is this observed state, never the exit code of a command.
import net from 'node:net';
import pg from 'pg';
import { TIMELINE_SQL } from '@/lib/agent/timeline-sql';
import { instanceClient } from '@/lib/fleet/pg-access';
import { OBJECTS_FINGERPRINT_SQL } from '@/lib/fleet/objects/fingerprint-sql';
import { readRisks, type RiskReading } from '@/lib/fleet/risks/read-risks';
import type { SeenCertificate } from '@/lib/fleet/risks/cert-probe';

export interface Observed {
  reachable: boolean;
  /** Why not, when not reachable: ECONNREFUSED means nothing listens (stopped). */
  error?: string;
  refused?: boolean;
  inRecovery?: boolean;
  startTime?: Date;
  confLoadTime?: Date;
  /** The timeline it writes (a primary) or follows (a replica): see TIMELINE_SQL. */
  timeline?: number;
  /** pg_control_system(): shared by every member of a replication herd, and by nothing else. */
  systemIdentifier?: string;
  lsn?: string;
  /** Replicas: the last WAL position received (lsn is the last replayed). */
  receiveLsn?: string | null;
  /** Replicas: how far behind replay is, in seconds (0 when it has replayed all it received). */
  replayLagSeconds?: number | null;
  pendingRestart?: boolean;
  /** server_version_num: 150018 is 15.18 (the build it runs, minor included). */
  serverVersionNum?: number;
  /** Replicas: replay stopped by pg_wal_replay_pause() (WAL still arrives, nothing is applied). */
  replayPaused?: boolean;
  walReceiver?: { status: string; senderHost: string | null; senderPort: number | null; receivedTli: number | null } | null;
  /** The data directory it runs from (null: pgherd's role may not read it: neither superuser nor pg_read_all_settings). */
  dataDirectory?: string | null;
  /** A primary's WAL archiving (pg_stat_archiver); null on a replica. */
  archive?: ArchiveReading | null;
  /** A primary's roles, memberships and databases as a digest (OBJECTS_FINGERPRINT_SQL); the refresh's reading alone. */
  objectsFingerprint?: string | null;
  /** What the risks look at (lib/fleet/risks/read-risks.ts), when this observation read it (the refresh's, now and then). */
  risks?: RiskReading;
}

/** What pg_stat_archiver says on a primary, and whether written WAL waits for the archive. */
export interface ArchiveReading {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedAt: Date | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: Date | null;
  /** Since when written WAL has waited for the archive (null: none waits); its age is the RPO now. */
  pendingSince: Date | null;
}

/** A value for a message: what was observed, or "?" when it was not. */
export const shown = (v: string | number | null | undefined): string | number => v ?? '?';

/** The row the observation query returns. */
interface ObservationRow {
  rec: boolean;
  start: Date;
  conf: Date;
  tli: number;
  sysid: string;
  lsn: string;
  receive_lsn: string | null;
  pending: boolean | null;
  objfp: string | null;
  vnum: number;
  paused: boolean | null;
  lag_s: string | number | null;
  wal: { status: string; host: string | null; port: number | null; tli: number | null } | null;
  dir: string | null;
  arch: {
    // bigint counters: JSON numbers, exact below 2^53.
    archived: number | string;
    lastWal: string | null;
    lastAt: string | null;
    failed: number | string;
    failedWal: string | null;
    failedAt: string | null;
    waiting: boolean;
    since: string | null;
  } | null;
}

export interface PgEndpoint {
  host: string;
  port: number;
  /** The environment of the server at that address: whose credentials and TLS settings are used. */
  serverEnvironment: string | null;
}

/**
 * What an observation reads. `pending` (a setting changed that only a restart applies) costs more than
 * all the rest (pg_settings formats every setting, about 0.3 ms), and a primary's objects' fingerprint is
 * the refresh's alone: the health gate, which reads its herds every second through a soak and never looks
 * at either, reads without them.
 */
const observationSql = (pending: boolean) => `
      SELECT pg_is_in_recovery() AS rec, pg_postmaster_start_time() AS start, pg_conf_load_time() AS conf,
             ${TIMELINE_SQL} AS tli,
             (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
             (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
             pg_last_wal_receive_lsn()::text AS receive_lsn,
             ${pending ? 'EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart)' : 'NULL::boolean'} AS pending,
             ${pending ? OBJECTS_FINGERPRINT_SQL : 'NULL::text'} AS objfp,
             current_setting('server_version_num')::int AS vnum,
             CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused,
             CASE WHEN NOT pg_is_in_recovery() THEN NULL
                  -- Nothing received beyond what is replayed (after a restart the receiver starts again at a
                  -- segment's start, behind replay): not behind, however old the last replayed transaction.
                  WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                  ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag_s,
             (SELECT json_build_object('status', status, 'host', sender_host, 'port', sender_port, 'tli', received_tli)
                FROM pg_stat_wal_receiver LIMIT 1) AS wal,
             CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE') THEN current_setting('data_directory') END AS dir,
             -- A primary's archiving. WAL waits when a whole segment past the last one archived is complete and
             -- not archived: the segment being written is the archive_timeout's to switch (a quiet primary's
             -- own background records never are, and owe the archive nothing). Positions, not names, so that
             -- any server since 9.4 can say it.
             CASE WHEN NOT pg_is_in_recovery() THEN
               (SELECT json_build_object('archived', archived_count, 'lastWal', last_archived_wal, 'lastAt', last_archived_time,
                       'failed', failed_count, 'failedWal', last_failed_wal, 'failedAt', last_failed_time,
                       'waiting', current_setting('archive_mode') <> 'off' AND CASE
                          WHEN last_archived_wal IS NULL THEN true
                          WHEN last_archived_wal !~ '^[0-9A-F]{24}' THEN false
                          ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)
                               - (((('x' || substr(last_archived_wal, 9, 8))::bit(32)::bigint * (4294967296 / seg.size))
                                   + ('x' || substr(last_archived_wal, 17, 8))::bit(32)::bigint + 1) * seg.size)
                               >= seg.size END,
                       'since', coalesce(last_archived_time, stats_reset))
                  FROM pg_stat_archiver, (SELECT pg_size_bytes(current_setting('wal_segment_size')) AS size) seg) END AS arch`;

/** The refresh's observation statement (the benchmark's simulated endpoints answer it with a real instance's row). */
export const OBSERVATION_SQL = observationSql(true);

/** Named statements: prepared once on a connection that reads again (the gate's and the refresh's kept ones). */
const OBSERVATION = { name: 'pgherd_observation', text: OBSERVATION_SQL };
const GATE_READING = { name: 'pgherd_gate_reading', text: observationSql(false) };

/** A connection for observations, or why there is none (unreachable). */
async function connectObserver(e: PgEndpoint, timeoutMs: number, applicationName = 'pgherd-observer'): Promise<pg.Client | Observed> {
  let c: pg.Client;
  try {
    c = instanceClient(e, {
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      // A connection kept across observations may meet a network that stopped answering: never wait on it for ever.
      query_timeout: timeoutMs + 1000,
      application_name: applicationName,
    });
  } catch (err) {
    return { reachable: false, error: (err as Error).message };
  }
  c.on('error', () => {}); // a server going away is reported by connect() or the queries below
  try {
    await c.connect();
    return c;
  } catch (err) {
    const e2 = err as NodeJS.ErrnoException;
    return { reachable: false, error: e2.message, refused: e2.code === 'ECONNREFUSED' };
  }
}

/**
 * One observation over an open connection (throws when the connection fails); `pendingRestart` is
 * left out (undefined: not read) when `pending` is false.
 */
async function readObservation(c: pg.Client, pending = true): Promise<Observed> {
  const {
    rows: [r],
  } = await c.query<ObservationRow>(pending ? OBSERVATION : GATE_READING);
  if (!r) return { reachable: false, error: 'the observation query returned no row' };
  const w = r.wal;
  return {
    reachable: true,
    inRecovery: r.rec,
    startTime: r.start,
    confLoadTime: r.conf,
    timeline: r.tli,
    systemIdentifier: r.sysid,
    lsn: r.lsn,
    receiveLsn: r.receive_lsn,
    ...(r.pending === null ? {} : { pendingRestart: r.pending }),
    serverVersionNum: r.vnum,
    replayPaused: r.paused ?? false,
    replayLagSeconds: r.lag_s === null ? null : Number(r.lag_s),
    walReceiver: w ? { status: w.status, senderHost: w.host, senderPort: w.port, receivedTli: w.tli } : null,
    dataDirectory: r.dir,
    archive: r.arch ? archiveFrom(r.arch) : null,
    ...(pending ? { objectsFingerprint: r.objfp } : {}),
  };
}

function archiveFrom(a: NonNullable<ObservationRow['arch']>): ArchiveReading {
  const at = (x: string | null) => (x ? new Date(x) : null);
  return {
    archivedCount: Number(a.archived),
    lastArchivedWal: a.lastWal,
    lastArchivedAt: at(a.lastAt),
    failedCount: Number(a.failed),
    lastFailedWal: a.failedWal,
    lastFailedAt: at(a.failedAt),
    pendingSince: a.waiting ? at(a.since) : null,
  };
}

/**
 * One connection asked again and again, for the steps that watch one instance for a while (a DR
 * failover's candidate, from the pre-flight through its replay): a new connection for each look (TLS
 * and SCRAM on both sides) costs more than the look, and a DR failover of many herds watches them all
 * at once. A look is made together with a postmasterAnswers probe, as the gate's kept sessions are: a
 * kept session answers while its postmaster is frozen, and such an instance is not reachable. A
 * statement over a failed session throws (a look says unreachable), and the next one connects again. A
 * session not used for `idleMs` closes itself: a run that stops between two uses leaves none open.
 */
export function sessionTo(e: PgEndpoint, opts: { timeoutMs?: number; idleMs?: number } = {}) {
  const timeoutMs = opts.timeoutMs ?? 2000;
  let c: pg.Client | null = null;
  let idle: NodeJS.Timeout | undefined;
  const drop = () => {
    clearTimeout(idle);
    void c?.end().catch(() => {});
    c = null;
  };
  const client = async (): Promise<pg.Client | Observed> => {
    clearTimeout(idle);
    idle = setTimeout(drop, opts.idleMs ?? 5000).unref();
    if (c) return c;
    const n = await connectObserver(e, timeoutMs);
    if (n instanceof pg.Client) c = n;
    return n;
  };
  return {
    /** A statement of the caller's (its rows; throws when it cannot be read). */
    async query<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
      const k = await client();
      if (!(k instanceof pg.Client)) throw new Error(k.error ?? `${e.host}:${String(e.port)} does not answer`);
      try {
        return (await k.query<R>(text)).rows;
      } catch (err) {
        drop();
        throw err;
      }
    },
    /** An observation (without pendingRestart), unreachable when the postmaster takes no new connection. */
    async look(): Promise<Observed> {
      const k = await client();
      if (!(k instanceof pg.Client)) return k;
      const [read, answers] = await Promise.all([
        readObservation(k, false).catch((err: unknown) => (err as Error).message),
        postmasterAnswers(e, timeoutMs),
      ]);
      if (typeof read === 'string') {
        drop();
        return { reachable: false, error: read };
      }
      return answers === null ? read : { reachable: false, error: `${answers} (an open session still answers)` };
    },
    close: drop,
  };
}

export type Session = ReturnType<typeof sessionTo>;

/** The sessions of one run, one an endpoint: `of` opens (or finds) one, `close` ends them all. */
export function sessionsOfRun() {
  const open = new Map<string, Session>();
  return {
    of(e: PgEndpoint): Session {
      const key = `${e.serverEnvironment ?? ''}|${e.host}|${String(e.port)}`;
      let s = open.get(key);
      if (!s) open.set(key, (s = sessionTo(e)));
      return s;
    },
    close(): void {
      for (const s of open.values()) s.close();
      open.clear();
    },
  };
}

export type RunSessions = ReturnType<typeof sessionsOfRun>;

/** The risks' reading added to an observation; an observation stands without it when it fails. */
async function withRisks(c: pg.Client, e: PgEndpoint, o: Observed, knownCertificate?: SeenCertificate | null): Promise<Observed> {
  if (!o.reachable) return o;
  try {
    return { ...o, risks: await readRisks(c, e, 3000, knownCertificate) };
  } catch {
    return o;
  }
}

/** Observes an instance over a connection of its own (with what the risks read, when asked). */
export async function observe(e: PgEndpoint, timeoutMs = 3000, opts: { risks?: boolean } = {}): Promise<Observed> {
  const c = await connectObserver(e, timeoutMs);
  if (!(c instanceof pg.Client)) return c;
  try {
    const o = await readObservation(c);
    return opts.risks ? await withRisks(c, e, o) : o;
  } catch (err) {
    return { reachable: false, error: (err as Error).message };
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Whether the instance's postmaster takes a new connection now, without TLS or a password: it is
 * sent a GSSENCRequest, whose one-byte answer ('G' or 'N') comes from the backend the postmaster
 * forked for it, and the connection is dropped there. Postgres logs nothing for a connection that
 * ends before its startup packet (an SSLRequest dropped after its 'S' is logged by an SSL server:
 * "could not accept SSL connection"). Null when it answered, else why not.
 */
export function postmasterAnswers(e: { host: string; port: number }, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect(e.port, e.host);
    const done = (why: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer to a new connection within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => {
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(80877104, 4); // GSSENCRequest
      socket.write(request);
    });
    socket.once('data', (d) => done(d[0] === 0x47 || d[0] === 0x4e ? null : `unexpected answer to a new connection (${String(d[0])})`));
    socket.on('error', (err) => done(err.message));
    socket.on('close', () => done('the connection closed unanswered'));
  });
}

/** How long a certificate seen by a handshake is taken as the server's, its configuration not reloaded meanwhile. */
const CERTIFICATE_EVERY_MS = 6 * 3_600_000;

/** Connections an observation pool keeps at most, by default; beyond them, an observation connects for itself. */
const KEPT_AT_MOST = 1000;

export interface ObservationPoolOptions {
  /**
   * Whether each reading over a kept session is made together with a postmasterAnswers probe, and an
   * instance that takes no new connection is not reachable (the gate's: default). Without it, a kept
   * session answers for its instance even while the postmaster is frozen (the refresh's: its reading is
   * the inventory's picture, never a fence's or a liveness probe's, which open connections of their own).
   */
  probe?: boolean;
  /** Whether readings include pendingRestart (the refresh's); the gate's leave it out (see observationSql). */
  pending?: boolean;
  keptAtMost?: number;
  /** What its sessions are called in pg_stat_activity (default pgherd-observer). */
  applicationName?: string;
  /**
   * How often a kept session also reads what the risks look at (lib/fleet/risks/read-risks.ts): the
   * refresh's, every few minutes. Undefined: never.
   */
  risksEveryMs?: () => number;
}

/**
 * Observations over kept connections, one an endpoint. The wave conductor samples the same herds every
 * second through a soak, and the refresh reads the whole fleet every interval: a new connection (TLS
 * and SCRAM on both sides) each time cost more than the reading. A kept connection that fails (its
 * instance restarted, say) is dropped and the observation made again over a new one at once, so a
 * reading is never older than the call. A kept session answers even while its postmaster is frozen: with
 * `probe` (the default), each reading over one is made together with a postmasterAnswers probe, and an
 * instance that takes no new connection is not reachable.
 */
export function observationPool(opts: ObservationPoolOptions = {}) {
  const probe = opts.probe ?? true;
  const pending = opts.pending ?? false;
  const keptAtMost = opts.keptAtMost ?? KEPT_AT_MOST;
  const kept = new Map<string, { client: pg.Client; usedAt: number; busy: boolean }>();
  // When each endpoint's risks were read last (kept beyond its session: a new session is not a reason to read again).
  const risksAt = new Map<string, number>();
  const risksDue = (key: string) => opts.risksEveryMs !== undefined && Date.now() - (risksAt.get(key) ?? 0) >= opts.risksEveryMs();
  // The certificate each endpoint showed its last handshake, and its configuration's load time then: a
  // certificate changes only with a reload (or a start), so a handshake is made again only when the load
  // time moved, or the last is older than CERTIFICATE_EVERY_MS (a TLS handshake costs ten readings).
  const certs = new Map<string, { cert: SeenCertificate | null; conf: number; at: number }>();
  const maybeRisks = async (key: string, e: PgEndpoint, c: pg.Client, o: Observed): Promise<Observed> => {
    if (!o.reachable || !risksDue(key)) return o;
    const conf = o.confLoadTime ? new Date(o.confLoadTime).getTime() : 0;
    const kept = certs.get(key);
    const fresh = kept && kept.conf === conf && Date.now() - kept.at < CERTIFICATE_EVERY_MS ? kept.cert : undefined;
    const r = await withRisks(c, e, o, fresh);
    if (r.risks) {
      // The first reading of an endpoint is dated up to half an interval back: the fleet's next readings
      // spread over the rounds, not all in the one after a cold start.
      const every = opts.risksEveryMs?.() ?? 0;
      risksAt.set(key, risksAt.has(key) ? Date.now() : Date.now() - Math.random() * every * 0.5);
      if (fresh === undefined)
        certs.set(key, {
          cert: r.risks.certificateNotAfter ? { notAfter: r.risks.certificateNotAfter, subject: r.risks.certificateSubject } : null,
          conf,
          at: Date.now(),
        });
    }
    return r;
  };
  const keyOf = (e: PgEndpoint) => `${e.serverEnvironment ?? ''}|${e.host}|${e.port}`;
  const drop = (key: string) => {
    const k = kept.get(key);
    kept.delete(key);
    void k?.client.end().catch(() => {});
  };
  let opened = 0;
  return {
    async look(e: PgEndpoint, timeoutMs = 3000): Promise<Observed> {
      const key = keyOf(e);
      const k = kept.get(key);
      // (One reading at a time on a session: a look at an endpoint already being read connects for itself.)
      if (k && !k.busy) {
        k.usedAt = Date.now();
        k.busy = true;
        const [read, answers] = await Promise.all([
          readObservation(k.client, pending).catch(() => null),
          probe ? postmasterAnswers(e, timeoutMs) : null,
        ]);
        const withR = read && answers === null ? await maybeRisks(key, e, k.client, read) : read;
        k.busy = false;
        if (withR && answers === null) return withR;
        drop(key);
        if (read) return { reachable: false, error: `${answers ?? ''} (an open session still answers)` };
        // The kept connection failed: observe again over a new one.
      }
      const c = await connectObserver(e, timeoutMs, opts.applicationName);
      if (!(c instanceof pg.Client)) return c;
      opened++;
      try {
        const o = await maybeRisks(key, e, c, await readObservation(c, pending));
        if (kept.size < keptAtMost && !kept.has(key)) kept.set(key, { client: c, usedAt: Date.now(), busy: false });
        else await c.end().catch(() => {});
        return o;
      } catch (err) {
        await c.end().catch(() => {});
        return { reachable: false, error: (err as Error).message };
      }
    },
    /** Closes the connections not used for `idleMs`. */
    sweep(idleMs: number) {
      const before = Date.now() - idleMs;
      for (const [key, k] of kept)
        if (k.usedAt < before && !k.busy) {
          drop(key);
          risksAt.delete(key);
          certs.delete(key);
        }
    },
    /**
     * Makes every endpoint's risks due at its next look (a person who just dropped a slot, or a test that
     * made one, need not wait out the interval).
     */
    readRisksNow() {
      for (const key of risksAt.keys()) risksAt.set(key, 0);
    },
    size: () => kept.size,
    /** Connections opened since the pool was made (kept or not). */
    opened: () => opened,
    close() {
      for (const key of [...kept.keys()]) drop(key);
    },
  };
}

export type ObservationPool = ReturnType<typeof observationPool>;

function describeLast(o: Observed): string {
  if (!o.reachable) return o.error ?? 'not answering';
  const w = o.walReceiver;
  return `running, ${o.inRecovery ? `replica on timeline ${shown(o.timeline)}, received ${o.receiveLsn ?? 'nothing'}, replayed ${shown(o.lsn)}, ${w ? `WAL receiver ${w.status} timeline ${shown(w.receivedTli)} from ${shown(w.senderHost)}:${shown(w.senderPort)}` : 'no WAL receiver'}` : `primary on timeline ${shown(o.timeline)} at ${shown(o.lsn)}`}`;
}

/** Polls until `ok(observed)`; every wait has a deadline. */
export async function waitObserved(
  e: PgEndpoint,
  what: string,
  ok: (o: Observed) => boolean,
  opts: { timeoutMs?: number; signal?: AbortSignal; everyMs?: number } = {},
): Promise<Observed> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last: Observed;
  for (;;) {
    last = await observe(e, 2000);
    if (ok(last)) return last;
    if (opts.signal?.aborted) throw new Error(`stopped waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`${e.host}:${e.port} did not reach "${what}" in time (last seen: ${describeLast(last)})`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 100));
  }
}

/** Runs one SQL command on the instance over a short-lived connection (CHECKPOINT, say). */
export async function runSql(e: PgEndpoint, text: string): Promise<void> {
  const c = instanceClient(e, { connectionTimeoutMillis: 3000, application_name: 'pgherd' });
  c.on('error', () => {}); // connect() or the query rejects with it
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}
