// The settings pass (a worker chore, every few seconds): reads the settings of every instance whose
// configuration was loaded since they were last read (the refresh writes pg_conf_load_time(), so a
// quiet fleet costs one indexed query), keeps a snapshot when they changed, then judges drift again where
// the reading or what the groups say moved. At 5,000 instances that is the refresh's interval plus one
// pass: within a minute of an ALTER SYSTEM and its reload (npm run bench -- config).
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { SettingReading } from '@/db/schema';
import { prepared } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { driftOf, type DriftEntry } from './drift';
import { changesBetween, loadCatalog, majorOf, readSettings, saveCatalog, type SettingsReading } from './read-settings';
import type { SettingMeta } from './values';
import { keptSettings } from './secrets';
import { governed, wantedDigest, wantedSettings, type GroupText, type WantedInputs } from './wanted';

export interface SettingsPassSummary {
  read: number;
  changed: number;
  failed: number;
  judged: number;
  drifted: number;
}

/** Reads the settings of the instances whose configuration was loaded again, then judges drift. */
export async function settingsPass(
  db: Db,
  opts: {
    limit?: number;
    concurrency?: number;
    timeoutMs?: number;
    /** A chore's turn confirmed in each transaction that keeps a reading (lib/engine/turns.ts). */
    fence?: (tx: Pick<Db, 'execute'>) => Promise<void>;
  } = {},
): Promise<SettingsPassSummary> {
  const due = await db.execute<{ id: string | number; conf: Date }>(sql`
    SELECT id, conf_loaded_at AS conf FROM instances
    WHERE state = 'running' AND conf_loaded_at IS NOT NULL
      AND (settings_loaded_at IS NULL OR conf_loaded_at > settings_loaded_at + interval '1 millisecond')
    ORDER BY settings_loaded_at NULLS FIRST LIMIT ${opts.limit ?? 2000}`);
  const refs = await loadInstanceRefs(
    db,
    due.rows.map((r) => Number(r.id)),
  );
  const seen = new Map(due.rows.map((r) => [Number(r.id), new Date(r.conf)]));
  let changed = 0;
  let failed = 0;
  await mapLimit(refs, opts.concurrency ?? 16, async (r) => {
    try {
      if (await recordReading(db, r, await readSettings(r, opts.timeoutMs ?? 5000), seen.get(r.id), opts.fence)) changed++;
    } catch {
      // Not answering now: the refresh will say so; read again on the next pass.
      failed++;
    }
  });
  const j = await judgeDrift(db);
  return { read: refs.length - failed, changed, failed, ...j };
}

/**
 * Keeps a reading: a snapshot when it differs from the last one (or is the first). Whether it did.
 * `seen`: the load time that made it due. pg_conf_load_time() is each session's own: the refresh's kept
 * session says when it re-read the files itself (at its next query after a reload), later than the time a
 * new session gives (the postmaster's). A reading made after the refresh saw that time covers it: the
 * later of the two is what the settings were read at, or the instance would be read again every pass.
 */
export async function recordReading(
  db: Db,
  r: Pick<InstanceRef, 'id' | 'herdId'>,
  reading: SettingsReading,
  seen?: Date,
  fence?: (tx: Pick<Db, 'execute'>) => Promise<void>,
): Promise<boolean> {
  await saveCatalog(db, reading);
  const loadedAt = seen && seen > reading.confLoadedAt ? seen : reading.confLoadedAt;
  const prev = await db.execute<{ id: number; settings: Record<string, SettingReading>; vnum: number }>(sql`
    SELECT s.id, s.settings, s.server_version_num AS vnum FROM instances i JOIN setting_snapshots s ON s.id = i.settings_snapshot_id WHERE i.id = ${r.id}`);
  const first = prev.rows[0];
  // Kept by an older version, it may hold what is no longer kept: compared as it would be kept now.
  const before = first ? { ...first, settings: keptSettings(first.settings) } : null;
  const changes = changesBetween(before?.settings ?? null, reading.settings);
  if (before && !Object.keys(changes).length && before.vnum === reading.serverVersionNum) {
    await db.execute(sql`UPDATE instances SET settings_loaded_at = ${loadedAt} WHERE id = ${r.id}`);
    return false;
  }
  await db.transaction(async (tx) => {
    await fence?.(tx);
    // The operation holding the herd as it is read: what made the change, where pgherd made it.
    const held = await tx.execute<{ op: number }>(sql`
      SELECT t.operation_id AS op FROM herd_leases l JOIN operation_targets t ON t.id = l.target_id
      WHERE l.herd_id = ${r.herdId} AND l.expires_at > now()`);
    const [snap] = (
      await tx.execute<{ id: number }>(sql`
      INSERT INTO setting_snapshots (instance_id, herd_id, server_version_num, settings, changed, effective_at, operation_id)
      VALUES (${r.id}, ${r.herdId}, ${reading.serverVersionNum}, ${JSON.stringify(reading.settings)}::jsonb, ${JSON.stringify(changes)}::jsonb,
              ${reading.confLoadedAt}, ${held.rows[0]?.op ?? null})
      RETURNING id`)
    ).rows;
    await tx.execute(sql`
      UPDATE instances SET settings_snapshot_id = ${snap?.id ?? null}, settings_loaded_at = ${loadedAt}
      WHERE id = ${r.id}`);
  });
  return true;
}

interface InputRow {
  /** bigint: text on the wire. */
  id: string | number;
  herd_id: number;
  server_version_num: number | null;
  settings_snapshot_id: number | null;
  settings_wanted_digest: string | null;
  settings_drift: number | null;
  eg_id: number | null;
  eg_name: string | null;
  eg_version: number | null;
  eg_settings: string | null;
  hg_id: number | null;
  hg_name: string | null;
  hg_version: number | null;
  hg_settings: string | null;
  ig_id: number | null;
  ig_name: string | null;
  ig_version: number | null;
  ig_settings: string | null;
  setting_overrides: string;
  memory_mb: number | null;
  cpus: number | null;
}

const INPUTS = sqlFile('lib/fleet/settings/wanted-inputs.sql');
const ALL_INPUTS = { name: 'pgherd_wanted_inputs', text: INPUTS };
const INPUTS_BY_IDS = { name: 'pgherd_wanted_inputs_by_ids', text: `${INPUTS} WHERE i.id = ANY($1::bigint[])` };

const group = (id: number | null, name: string | null, version: number | null, settings: string | null): GroupText | null =>
  id === null ? null : { id, name: name ?? '', version: version ?? 0, settings: settings ?? '' };

export const inputsOf = (r: InputRow): WantedInputs => ({
  environmentGroup: group(r.eg_id, r.eg_name, r.eg_version, r.eg_settings),
  herdGroup: group(r.hg_id, r.hg_name, r.hg_version, r.hg_settings),
  herdOverrides: r.setting_overrides,
  instanceGroup: group(r.ig_id, r.ig_name, r.ig_version, r.ig_settings),
  host: { memoryMb: r.memory_mb, cpus: r.cpus },
});

/** What each instance's groups say, by instance id (default: every instance). */
export async function loadWantedInputs(db: Db, ids?: number[]): Promise<Map<number, InputRow & { inputs: WantedInputs }>> {
  const rows = ids
    ? await prepared<InputRow>(db, INPUTS_BY_IDS.name, INPUTS_BY_IDS.text, [ids])
    : await prepared<InputRow>(db, ALL_INPUTS.name, ALL_INPUTS.text, []);
  return new Map(rows.map((r) => [Number(r.id), { ...r, inputs: inputsOf(r) }]));
}

/** Catalogues by major, loaded once a pass. */
function catalogs(db: Db) {
  const cache = new Map<number, Promise<Map<string, SettingMeta>>>();
  return (major: number) => {
    let c = cache.get(major);
    if (!c) {
      c = loadCatalog(db, major);
      cache.set(major, c);
    }
    return c;
  };
}

/** An instance's drift now: what its groups say against its last snapshot (null: no group, or never read). */
export async function driftFor(db: Db, instanceId: number): Promise<{ entries: DriftEntry[]; readAt: Date | null } | null> {
  const row = (await loadWantedInputs(db, [instanceId])).get(instanceId);
  if (!row || !governed(row.inputs) || row.settings_snapshot_id === null) return null;
  const snap = await loadSnapshot(db, row.settings_snapshot_id);
  if (!snap) return null;
  const catalog = await loadCatalog(db, majorOf(snap.serverVersionNum));
  return { entries: driftOf(wantedSettings(row.inputs), snap.settings, catalog), readAt: snap.readAt };
}

export async function loadSnapshot(
  db: Db,
  id: number,
): Promise<{ settings: Record<string, SettingReading>; serverVersionNum: number; readAt: Date; effectiveAt: Date } | null> {
  const r = await db.execute<{ settings: Record<string, SettingReading>; vnum: number; read_at: Date; effective_at: Date }>(sql`
    SELECT settings, server_version_num AS vnum, read_at, effective_at FROM setting_snapshots WHERE id = ${id}`);
  const x = r.rows[0];
  return x
    ? { settings: keptSettings(x.settings), serverVersionNum: x.vnum, readAt: new Date(x.read_at), effectiveAt: new Date(x.effective_at) }
    : null;
}

/**
 * Judges drift again where what the groups say or the last reading moved since it was judged (a key of
 * both, kept on the instance): a fleet where nothing moved costs one read of the inputs and no snapshot.
 */
export async function judgeDrift(db: Db, opts: { ids?: number[] } = {}): Promise<{ judged: number; drifted: number }> {
  const inputs = await loadWantedInputs(db, opts.ids);
  const catalog = catalogs(db);
  const writes: { id: number; drift: number | null; key: string }[] = [];
  const toJudge: { id: number; row: InputRow & { inputs: WantedInputs }; key: string }[] = [];
  for (const [id, row] of inputs) {
    const key =
      governed(row.inputs) && row.settings_snapshot_id !== null ? `${wantedDigest(row.inputs)}:${row.settings_snapshot_id}` : 'none';
    if (key === row.settings_wanted_digest) continue;
    if (key === 'none') writes.push({ id, drift: null, key });
    else toJudge.push({ id, row, key });
  }
  // The snapshots read a few hundred at a time: a group edited re-judges every instance it is assigned to.
  for (let k = 0; k < toJudge.length; k += JUDGE_BATCH) {
    const part = toJudge.slice(k, k + JUDGE_BATCH);
    const snaps = await loadSnapshots(
      db,
      part.map((x) => x.row.settings_snapshot_id as number),
    );
    for (const { id, row, key } of part) {
      const snap = snaps.get(row.settings_snapshot_id as number);
      if (!snap) continue;
      const entries = driftOf(wantedSettings(row.inputs), snap.settings, await catalog(majorOf(snap.serverVersionNum)));
      writes.push({ id, drift: entries.length, key });
    }
  }
  if (writes.length)
    await db.execute(sql`
      UPDATE instances i SET settings_drift = w.drift, settings_wanted_digest = w.key,
        settings_drift_since = CASE WHEN coalesce(w.drift, 0) = 0 THEN NULL ELSE coalesce(i.settings_drift_since, now()) END
      FROM jsonb_to_recordset(${JSON.stringify(writes)}::jsonb) AS w(id bigint, drift integer, key text)
      WHERE i.id = w.id`);
  const drifted = await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM instances WHERE settings_drift > 0`);
  return { judged: writes.length, drifted: drifted.rows[0]?.n ?? 0 };
}

const JUDGE_BATCH = 500;

/** Snapshots by id. */
async function loadSnapshots(
  db: Db,
  ids: number[],
): Promise<Map<number, { settings: Record<string, SettingReading>; serverVersionNum: number }>> {
  const r = await db.execute<{ id: string | number; settings: Record<string, SettingReading>; vnum: number }>(sql`
    SELECT id, settings, server_version_num AS vnum FROM setting_snapshots WHERE id = ANY(${sql.param(ids)}::bigint[])`);
  return new Map(r.rows.map((x) => [Number(x.id), { settings: keptSettings(x.settings), serverVersionNum: x.vnum }]));
}
