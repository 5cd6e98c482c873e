// The state refresher: reads every instance's role, state, timeline, LSN, lag, upstream and pending
// restarts, with bounded concurrency, and writes them to the inventory; a herd found with two members
// accepting writes at once is said to have two primaries (lib/fleet/two-primaries.ts).
import { and, eq, gt, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { dnsRecords, herdLeases, herds, instances, instanceState } from '@/db/schema';
import { checkRecord } from '@/lib/fleet/dns-records';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, type Observed } from '@/lib/fleet/observe';
import { judgeHerds } from '@/lib/fleet/no-primary';
import { acceptingWrites, recordTwoPrimaries } from '@/lib/fleet/two-primaries';
import { archiveValues, isDeliberate, keepDeliberate, stateFrom } from '@/lib/fleet/record-observation';

export interface RefreshSummary {
  observed: number;
  reachable: number;
  ms: number;
}

type InstanceState = (typeof instanceState.enumValues)[number];

/** What one pass of observations says of a member, read against the other members seen in it. */
export interface Reading {
  observed: Observed;
  /** null when it does not answer. */
  role: 'primary' | 'replica' | null;
  /** States pgherd set on purpose (fenced, needs_rebuild) stay whatever the instance says. */
  state: InstanceState;
  lsn: number | null;
  /** Bytes behind the herd's primary as seen in this same pass (0 for the primary). */
  lagBytes: number | null;
  /** The member it streams from; `upstreamEndpoint` when that is not a member of its herd. */
  upstream: InstanceRef | null;
  upstreamEndpoint: string | null;
  /**
   * Recorded as the primary, silent now, while another member answers as the primary on a later
   * timeline: superseded (a switchover or failover that stopped after the promotion). Recorded as no
   * longer the primary, and fenced: started as it is, it would come up as a second primary; a rebuild
   * (pg_rewind) brings it back as a replica.
   */
  superseded: boolean;
}

/**
 * `maySupersede`: whether a silent member recorded as primary may be read as superseded (see
 * Reading.superseded). Only the refresher's writes ask it, for herds no operation holds and Patroni
 * does not run: in the middle of a switchover, or while Patroni rejoins an old leader, a stopped old
 * primary beside the new one is the plan, not something left behind.
 */
export function readPass(
  seen: { r: InstanceRef; o: Observed }[],
  maySupersede: (r: InstanceRef) => boolean = () => false,
): Map<number, Reading> {
  const primaryLsn = new Map<number, number>();
  for (const { r, o } of seen) if (o.reachable && o.inRecovery === false && o.lsn) primaryLsn.set(r.herdId, lsnToNumber(o.lsn));
  const primaryTimeline = new Map<number, number>();
  for (const { r, o } of seen)
    if (o.reachable && o.inRecovery === false && typeof o.timeline === 'number')
      primaryTimeline.set(r.herdId, Math.max(o.timeline, primaryTimeline.get(r.herdId) ?? 0));
  const byEndpoint = new Map(seen.map(({ r }) => [`${r.herdId}/${r.host}:${r.port}`, r]));
  return new Map(
    seen.map(({ r, o }) => {
      const keep = isDeliberate(r.state);
      const lsn = o.reachable && o.lsn ? lsnToNumber(o.lsn) : null;
      const primary = primaryLsn.get(r.herdId);
      const w = o.reachable && o.inRecovery ? o.walReceiver : null;
      const endpoint = w?.senderHost ? `${w.senderHost}:${w.senderPort ?? 5432}` : null;
      const upstream = endpoint ? (byEndpoint.get(`${r.herdId}/${endpoint}`) ?? null) : null;
      const later = primaryTimeline.get(r.herdId);
      const superseded =
        !o.reachable && r.role === 'primary' && r.timeline !== null && later !== undefined && later > r.timeline && maySupersede(r);
      return [
        r.id,
        {
          observed: o,
          role: !o.reachable ? null : o.inRecovery ? 'replica' : 'primary',
          state: keep ? (r.state as InstanceState) : superseded ? 'fenced' : o.reachable ? 'running' : stateFrom(o),
          lsn,
          lagBytes: !o.reachable ? null : !o.inRecovery ? 0 : primary !== undefined && lsn !== null ? Math.max(0, primary - lsn) : null,
          upstream,
          upstreamEndpoint: endpoint && !upstream ? endpoint : null,
          superseded,
        },
      ];
    }),
  );
}

/** Refreshes the given instances (default: all). States pgherd set on purpose (fenced, needs_rebuild) stay. */
export async function refreshFleet(
  db: Db,
  opts: { ids?: number[]; concurrency?: number; timeoutMs?: number } = {},
): Promise<RefreshSummary> {
  const t0 = Date.now();
  const ids = opts.ids ?? (await db.select({ id: instances.id }).from(instances)).map((r) => r.id);
  // The herds an operation holds as the pass begins: one that ends while the pass observes must not
  // have its members' mid-operation states read as left behind.
  const heldBefore = await heldHerds(db);
  const refs = await loadInstanceRefs(db, ids);
  const seen = await mapLimit(refs, opts.concurrency ?? 16, async (r) => ({
    r,
    o: await observe(r, opts.timeoutMs ?? 3000, { risks: true }),
  }));
  await recordPass(db, seen, heldBefore);
  return { observed: seen.length, reachable: seen.filter((x) => x.o.reachable).length, ms: Date.now() - t0 };
}

/**
 * Writes a pass of observations; a state pgherd set on purpose meanwhile (fenced) stays, see
 * keepDeliberate. Then the herds it looked at are judged: one whose primary is gone since the last look
 * (stopped by hand, or by a stop that waited in a frozen postmaster) is said to have none, and one
 * where a primary answers again no longer is (lib/fleet/no-primary.ts).
 */
export const heldHerds = async (db: Db) =>
  new Set(
    (
      await db
        .select({ id: herdLeases.herdId })
        .from(herdLeases)
        .where(gt(herdLeases.expiresAt, sql`now()`))
    ).map((x) => x.id),
  );

export async function recordPass(
  db: Db,
  seen: { r: InstanceRef; o: Observed }[],
  heldBefore = new Set<number>(),
  claim?: { holder: string },
): Promise<void> {
  const heldNow = await heldHerds(db);
  const readings = readPass(seen, (r) => r.controlDriver !== 'patroni' && !heldBefore.has(r.herdId) && !heldNow.has(r.herdId));
  const now = new Date();
  const answered = new Set<number>();
  const plain: ReadingRow[] = [];
  for (const { r } of seen) {
    const reading = readings.get(r.id);
    if (!reading) continue; // readPass reads every member it is given
    if (reading.role === 'primary' && reading.state === 'running') answered.add(r.herdId);
    if (reading.superseded && r.timeline !== null) {
      // Only as the row still is when read: recorded the primary, on that timeline, its herd held by
      // no operation now (one that ended meanwhile recorded what it did, and that stands).
      const fenced = await db
        .update(instances)
        .set({ ...values(reading, now), state: keepDeliberate(reading.state) })
        .where(
          and(
            eq(instances.id, r.id),
            eq(instances.role, 'primary'),
            eq(instances.timeline, r.timeline),
            sql`NOT EXISTS (SELECT 1 FROM herd_leases l WHERE l.herd_id = ${r.herdId} AND l.expires_at > now())`,
          ),
        )
        .returning({ id: instances.id });
      if (fenced.length) continue;
      const plain = { ...reading, superseded: false, state: stateFrom(reading.observed) };
      await db
        .update(instances)
        .set({ ...values(plain, now), state: keepDeliberate(plain.state) })
        .where(eq(instances.id, r.id));
      continue;
    }
    plain.push(rowOf(r.id, reading));
  }
  await writeReadings(db, plain, claim);
  await writeRiskReadings(db, seen, claim);
  await tellTwoPrimaries(db, seen, readings);
  const silent = [...new Set(seen.map(({ r }) => r.herdId))].filter((h) => !answered.has(h));
  await judgeHerds(db, { answered: [...answered], silent });
}

/**
 * Two members of a herd answered as primary in this pass, one of them not recorded as a running primary
 * before it (a replica promoted by hand, a copy started on its own): asked again, both at once, and if
 * both still accept writes, the herd has two primaries and the webhooks are told (once: the inventory
 * says so from then on). An operation's own records never raise it; only Postgres does.
 */
async function tellTwoPrimaries(db: Db, seen: { r: InstanceRef; o: Observed }[], readings: Map<number, Reading>): Promise<void> {
  const byHerd = new Map<number, InstanceRef[]>();
  for (const { r } of seen) if (readings.get(r.id)?.role === 'primary') byHerd.set(r.herdId, [...(byHerd.get(r.herdId) ?? []), r]);
  for (const [herdId, members] of byHerd) {
    const fresh = members.find((r) => r.role !== 'primary' || r.state !== 'running');
    if (members.length < 2 || !fresh) continue;
    const [h] = await db.select({ sysid: herds.systemIdentifier }).from(herds).where(eq(herds.id, herdId));
    const writable = await acceptingWrites(members, () => h?.sysid ?? null);
    if (writable.length < 2 || !writable.some((m) => m.id === fresh.id)) continue;
    const labels = writable.map((m) => m.label);
    await recordTwoPrimaries(db, {
      herdId,
      instanceId: fresh.id,
      operationId: null,
      detail: `${labels.join(' and ')} accept writes at once, each asked: the herd has two primaries. Clients may write to either: stop one and rebuild it from the other, or find out first which one they wrote to`,
    });
  }
}

/** The risks' readings of a pass, where it read them (one statement; lib/features/risks judges them). */
async function writeRiskReadings(db: Db, seen: { r: InstanceRef; o: Observed }[], claim?: { holder: string }): Promise<void> {
  const read = seen.filter(({ o }) => o.risks);
  if (!read.length) return;
  await db.execute(sql`
    INSERT INTO risk_readings (instance_id, reading, read_at)
    SELECT x.id, x.reading, now()
    FROM jsonb_to_recordset(${JSON.stringify(read.map(({ r, o }) => ({ id: r.id, reading: o.risks })))}::jsonb) AS x(id bigint, reading jsonb)
    WHERE EXISTS (SELECT 1 FROM instances i WHERE i.id = x.id
      AND ${claim ? sql`EXISTS (SELECT 1 FROM herds h WHERE h.id = i.herd_id AND h.observed_by = ${claim.holder} AND h.observe_due_at > now())` : sql`true`})
    ON CONFLICT (instance_id) DO UPDATE SET reading = EXCLUDED.reading, read_at = EXCLUDED.read_at`);
}

/** A reading as one row of the pass's write (see writeReadings). */
interface ReadingRow {
  id: number;
  answered: boolean;
  state: InstanceState;
  role: 'primary' | 'replica' | null;
  timeline: number | null;
  lsn: number | null;
  lag_bytes: number | null;
  lag_seconds: number | null;
  pending: boolean;
  vnum: number | null;
  upstream: number | null;
  archived: number | null;
  last_wal: string | null;
  last_at: Date | null;
  failed: number | null;
  failed_wal: string | null;
  failed_at: Date | null;
  pending_since: Date | null;
  conf_at: Date | null;
  objects_fp: string | null;
  /** The fingerprint was read (an observation without it keeps the last one). */
  objects_known: boolean;
}

function rowOf(id: number, x: Reading): ReadingRow {
  const o = x.observed;
  const a = archiveValues(o);
  return {
    id,
    answered: x.role !== null,
    // What the instance says; whether a deliberate state stays is the row's to say when the write lands
    // (a fence a rebuild cleared during the pass must not come back from the state the pass loaded).
    state: isDeliberate(x.state) ? stateFrom(o) : x.state,
    role: x.role,
    timeline: o.timeline ?? null,
    lsn: x.lsn,
    lag_bytes: x.lagBytes,
    lag_seconds: x.role === 'replica' ? (o.replayLagSeconds ?? null) : 0,
    pending: !!o.pendingRestart,
    vnum: o.serverVersionNum ?? null,
    upstream: x.upstream?.id ?? null,
    archived: a.archivedCount,
    last_wal: a.lastArchivedWal,
    last_at: a.lastArchivedAt,
    failed: a.archiveFailedCount,
    failed_wal: a.lastArchiveFailedWal,
    failed_at: a.lastArchiveFailedAt,
    pending_since: a.archivePendingSince,
    conf_at: o.confLoadTime ?? null,
    objects_fp: o.objectsFingerprint ?? null,
    objects_known: o.objectsFingerprint !== undefined,
  };
}

/**
 * A pass's readings in one statement: a refresh over thousands of instances a second cannot afford a
 * round trip an instance. What `values` sets, row by row: a member that did not answer gets its state and
 * the time only; a state pgherd set on purpose stays (keepDeliberate's rule, as the row is when the write
 * lands). The time is the database's (a worker's clock may be off). With `claim`, only the members of
 * herds still claimed by that worker are written. A row an operation holds is left to the next pass, and
 * the statement waits for no lock for long: when it cannot be written whole (a lock held, an upstream
 * deleted meanwhile), each row is written on its own, and a row that fails loses only itself.
 */
async function writeReadings(db: Db, rows: ReadingRow[], claim?: { holder: string }): Promise<void> {
  if (!rows.length) return;
  const write = (part: ReadingRow[]) =>
    db.transaction(async (tx) => {
      await tx.execute(sql`SET LOCAL lock_timeout = '2s'`);
      await tx.execute(sql`
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(part)}::jsonb) AS v(
        id bigint, answered boolean, state text, role text, timeline integer, lsn bigint, lag_bytes bigint, lag_seconds real,
        pending boolean, vnum integer, upstream bigint, archived bigint, last_wal text, last_at timestamptz, failed bigint, failed_wal text,
        failed_at timestamptz, pending_since timestamptz, conf_at timestamptz, objects_fp text, objects_known boolean)),
    -- A row an operation holds locked now is left to the next pass: the refresh never waits on an
    -- operation (nor can a lock taken in another order deadlock with it). NO KEY: a row others only
    -- reference (a foreign key's KEY SHARE) is written.
    free AS (
      SELECT i.id FROM instances i JOIN v ON v.id = i.id
      WHERE ${claim ? sql`EXISTS (SELECT 1 FROM herds h WHERE h.id = i.herd_id AND h.observed_by = ${claim.holder} AND h.observe_due_at > now())` : sql`true`}
      ORDER BY i.id FOR NO KEY UPDATE OF i SKIP LOCKED)
    UPDATE instances AS i SET
      state = CASE WHEN i.state IN ('fenced', 'needs_rebuild') THEN i.state ELSE v.state::instance_state END,
      role = CASE WHEN v.answered THEN v.role::instance_role ELSE i.role END,
      observed_role = CASE WHEN v.answered THEN v.role::instance_role ELSE i.observed_role END,
      timeline = CASE WHEN v.answered THEN v.timeline ELSE i.timeline END,
      lsn = CASE WHEN v.answered THEN v.lsn ELSE i.lsn END,
      lag_bytes = CASE WHEN v.answered THEN v.lag_bytes ELSE i.lag_bytes END,
      lag_seconds = CASE WHEN v.answered THEN v.lag_seconds ELSE i.lag_seconds END,
      pending_restart = CASE WHEN v.answered THEN v.pending ELSE i.pending_restart END,
      server_version_num = CASE WHEN v.answered THEN v.vnum ELSE i.server_version_num END,
      upstream_instance_id = CASE WHEN v.answered THEN v.upstream ELSE i.upstream_instance_id END,
      archived_count = CASE WHEN v.answered THEN v.archived ELSE i.archived_count END,
      last_archived_wal = CASE WHEN v.answered THEN v.last_wal ELSE i.last_archived_wal END,
      last_archived_at = CASE WHEN v.answered THEN v.last_at ELSE i.last_archived_at END,
      archive_failed_count = CASE WHEN v.answered THEN v.failed ELSE i.archive_failed_count END,
      last_archive_failed_wal = CASE WHEN v.answered THEN v.failed_wal ELSE i.last_archive_failed_wal END,
      last_archive_failed_at = CASE WHEN v.answered THEN v.failed_at ELSE i.last_archive_failed_at END,
      archive_pending_since = CASE WHEN v.answered THEN v.pending_since ELSE i.archive_pending_since END,
      conf_loaded_at = CASE WHEN v.answered THEN v.conf_at ELSE i.conf_loaded_at END,
      objects_fingerprint = CASE WHEN v.answered AND v.objects_known THEN v.objects_fp ELSE i.objects_fingerprint END,
      last_observed_at = now(),
      answered_at = CASE WHEN v.answered THEN now() ELSE i.answered_at END,
      updated_at = now()
    FROM v JOIN free ON free.id = v.id
    WHERE i.id = v.id`);
    });
  try {
    await write(rows);
  } catch {
    if (rows.length === 1) return;
    for (const r of rows) await write([r]).catch(() => {});
  }
}

function values(x: Reading, now: Date) {
  const o = x.observed;
  if (x.superseded) return { state: x.state, role: 'replica' as const, lastObservedAt: now };
  if (!x.role) return { state: x.state, lastObservedAt: now };
  return {
    state: x.state,
    role: x.role,
    observedRole: x.role,
    timeline: o.timeline,
    lsn: x.lsn,
    lagBytes: x.lagBytes,
    lagSeconds: x.role === 'replica' ? (o.replayLagSeconds ?? null) : 0,
    pendingRestart: !!o.pendingRestart,
    serverVersionNum: o.serverVersionNum ?? null,
    confLoadedAt: o.confLoadTime ?? null,
    ...(o.objectsFingerprint !== undefined ? { objectsFingerprint: o.objectsFingerprint } : {}),
    upstreamInstanceId: x.upstream?.id ?? null,
    ...archiveValues(o),
    lastObservedAt: now,
  };
}

/**
 * Asks each DNS record of the herds (default: all) at its zone's server and records the answer and
 * whether it drifted from what the inventory's members say (the herds changelist's flag).
 * Returns how many records drifted.
 */
export async function checkDnsRecords(db: Db, opts: { herdIds?: number[] } = {}): Promise<{ checked: number; drifted: number }> {
  const herdIds = opts.herdIds ?? (await db.selectDistinct({ id: dnsRecords.herdId }).from(dnsRecords)).map((r) => r.id);
  const herds = await loadHerdRefs(db, herdIds);
  const seen = await mapLimit(
    herds.flatMap((h) => h.dns.map((rec) => ({ h, rec }))),
    16,
    ({ h, rec }) => checkRecord(rec, h.members),
  );
  const now = new Date();
  for (const d of seen) {
    await db
      .update(dnsRecords)
      .set({ lastAnswer: d.answers, drifted: d.answers === null ? null : !d.ok, lastCheckedAt: now })
      .where(eq(dnsRecords.id, d.record.id));
  }
  return { checked: seen.length, drifted: seen.filter((d) => d.answers !== null && !d.ok).length };
}
