// The objects pass (a worker chore, every few seconds): reads the objects of every primary of a herd
// that declares any, where the refresh's fingerprint of its roles, memberships and databases moved, its
// configuration was loaded again (pg_hba), or the last reading is older than PGHERD_OBJECTS_MAX_AGE_MS;
// then judges drift where the reading, the declaration or the herd's shape moved. A quiet fleet costs one
// indexed query and the judging of nothing.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { mapLimit } from '@/lib/adapters/async/map-limit';
import { loadInstanceRefs } from '@/lib/fleet/instance-ref';
import { setting } from '@/lib/settings/settings';
import { declarationOf, type DeclaredInputs, type Declaration, type SetText } from './declaration';
import { objectChanges, type ObjectChange } from './diff';
import { renderHba, type HbaContext, type RenderedLine } from './hba';
import { readObjects, type ObjectsReading } from './read-objects';

export interface ObjectsPassSummary {
  read: number;
  failed: number;
  judged: number;
  drifted: number;
  /** How long finding the due primaries took, and judging (the bench reads them). */
  ms: { due: number; judge: number };
}

type InputRow = {
  id: string | number;
  herd_id: number;
  role: string;
  objects_judged_key: string | null;
  es_id: number | null;
  es_name: string | null;
  es_version: number | null;
  es_declaration: string | null;
  hs_id: number | null;
  hs_name: string | null;
  hs_version: number | null;
  hs_declaration: string | null;
  object_overrides: string;
  read_at: Date | null;
};

const set = (id: number | null, name: string | null, version: number | null, text: string | null): SetText | null =>
  id === null ? null : { id, name: name ?? '', version: version ?? 0, declaration: text ?? '' };

const inputsOf = (r: InputRow): DeclaredInputs => ({
  environmentSet: set(r.es_id, r.es_name, r.es_version, r.es_declaration),
  herdSet: set(r.hs_id, r.hs_name, r.hs_version, r.hs_declaration),
  herdOverrides: r.object_overrides,
});

/** InputRow's columns (i: the instance, h: its herd, e: its environment, es/hs: their sets, r: its reading). */
const INPUT_COLUMNS = sql`i.id, i.herd_id, i.role, i.objects_judged_key,
  es.id AS es_id, es.name AS es_name, es.version AS es_version, es.declaration AS es_declaration,
  hs.id AS hs_id, hs.name AS hs_name, hs.version AS hs_version, hs.declaration AS hs_declaration,
  h.object_overrides, r.read_at`;
const INPUT_FROM = sql`instances i
  JOIN herds h ON h.id = i.herd_id
  JOIN environments e ON e.id = h.environment_id
  LEFT JOIN object_sets es ON es.id = e.object_set_id
  LEFT JOIN object_sets hs ON hs.id = h.object_set_id
  LEFT JOIN object_readings r ON r.instance_id = i.id`;

/** What each instance's herd declares, and its last reading's time (default: every instance). */
async function loadInputs(db: Db, where = sql`true`): Promise<(InputRow & { inputs: DeclaredInputs })[]> {
  const r = await db.execute<InputRow>(sql`SELECT ${INPUT_COLUMNS} FROM ${INPUT_FROM} WHERE ${where}`);
  return r.rows.map((x) => ({ ...x, inputs: inputsOf(x) }));
}

/** A herd's declaration, by herd id. */
export async function loadDeclarations(
  db: Db,
  herdIds: number[],
): Promise<Map<number, { inputs: DeclaredInputs; declaration: Declaration; errors: string[] }>> {
  const rows = await loadInputs(db, sql`i.herd_id = ANY(${sql.param(herdIds)}::int[])`);
  const out = new Map<number, { inputs: DeclaredInputs; declaration: Declaration; errors: string[] }>();
  for (const r of rows) if (!out.has(r.herd_id)) out.set(r.herd_id, { inputs: r.inputs, ...declarationOf(r.inputs) });
  return out;
}

/**
 * What a herd's drift is judged with beyond its declaration: the addresses its access rules' placeholders
 * stand for (pgherd's own: as its primary saw it), whether it has a pg_hba file at all (RDS has none: its
 * driver lacks access-rules, and says why; its declared lines are neither drift nor written), and the
 * passwords pgherd set on its rotated logins (a SHA-256 of each verifier, by login).
 */
export type HerdContext = Omit<HbaContext, 'pgherd'> & { hbaFile: boolean; passwordMarks: Record<string, string> };

export const NO_CONTEXT: HerdContext = { members: [], poolers: [], hbaFile: false, passwordMarks: {} };

export async function hbaContexts(db: Db, herdIds: number[]): Promise<Map<number, HerdContext>> {
  const r = await db.execute<{
    herd_id: number;
    members: string[];
    poolers: string[];
    hba_file: boolean;
    marks: Record<string, string>;
  }>(sql`
    SELECT h.id AS herd_id, h.control_driver <> 'rds' AS hba_file, h.password_marks AS marks,
      coalesce((SELECT array_agg(DISTINCT coalesce(nullif(s.address, ''), s.hostname)) FROM instances i JOIN servers s ON s.id = i.server_id
                WHERE i.herd_id = h.id), '{}') AS members,
      coalesce((SELECT array_agg(DISTINCT coalesce(nullif(s.address, ''), s.hostname)) FROM poolers p JOIN servers s ON s.id = p.server_id
                WHERE p.herd_id = h.id), '{}') AS poolers
    FROM herds h WHERE h.id = ANY(${sql.param(herdIds)}::int[])`);
  return new Map(
    r.rows.map((x) => [
      x.herd_id,
      { members: [...x.members].sort(), poolers: [...x.poolers].sort(), hbaFile: x.hba_file, passwordMarks: x.marks },
    ]),
  );
}

/**
 * The names a declaration needs read beyond the catalogue: its databases (for their extensions), its
 * extensions, and its rotated logins (for their passwords' digests).
 */
export function toRead(d: Declaration): { databases: string[]; extensions: string[]; logins: string[] } {
  return {
    databases: [...new Set([...d.databases.keys(), ...[...d.extensions.values()].map((e) => e.database)])].sort(),
    extensions: [...new Set([...d.extensions.values()].map((e) => e.name))].sort(),
    logins: [...new Set([...d.rotations.values()].flatMap((r) => r.users))].sort(),
  };
}

/** Whether a reading looked at what a declaration needs read (field by field: jsonb keeps its keys in an order of its own). */
const sameAsked = (a: Partial<ObjectsReading['asked']>, b: ObjectsReading['asked']) =>
  (['databases', 'extensions', 'logins'] as const).every((k) => JSON.stringify(a[k] ?? null) === JSON.stringify(b[k]));

/** Reads a primary's objects and keeps them (replacing the last reading). */
export async function recordObjects(db: Db, instanceId: number, d: Declaration, timeoutMs = 10_000): Promise<ObjectsReading> {
  const [ref] = await loadInstanceRefs(db, [instanceId]);
  if (!ref) throw new Error(`instance #${instanceId} is not in the inventory`);
  const before = await db.execute<{ fp: string | null; conf: Date | null }>(sql`
    SELECT objects_fingerprint AS fp, conf_loaded_at AS conf FROM instances WHERE id = ${instanceId}`);
  const reading = await readObjects(ref, { ...toRead(d), timeoutMs });
  await db.execute(sql`
    INSERT INTO object_readings (instance_id, reading, fingerprint, conf_loaded_at, read_at)
    VALUES (${instanceId}, ${JSON.stringify(reading)}::jsonb, ${before.rows[0]?.fp ?? null}, ${before.rows[0]?.conf ?? null}, now())
    ON CONFLICT (instance_id) DO UPDATE SET reading = EXCLUDED.reading, fingerprint = EXCLUDED.fingerprint,
      conf_loaded_at = EXCLUDED.conf_loaded_at, read_at = EXCLUDED.read_at`);
  return reading;
}

export async function loadReading(db: Db, instanceId: number): Promise<{ reading: ObjectsReading; readAt: Date } | null> {
  const r = await db.execute<{ reading: ObjectsReading; read_at: Date }>(sql`
    SELECT reading, read_at FROM object_readings WHERE instance_id = ${instanceId}`);
  const x = r.rows[0];
  return x ? { reading: x.reading, readAt: new Date(x.read_at) } : null;
}

/** A herd's access rules as they would be written, or null where it declares none. */
export function hbaLinesOf(d: Declaration, ctx: HerdContext, reading: ObjectsReading): { lines: RenderedLine[]; errors: string[] } | null {
  if (!d.hba.length || !ctx.hbaFile) return null;
  return renderHba(d.hba, { ...ctx, pgherd: reading.me.address });
}

/** What differs on one primary, from its last reading (and the errors of a declaration that cannot be used). */
export function changesOf(
  decl: { declaration: Declaration; errors: string[] },
  ctx: HerdContext,
  reading: ObjectsReading,
): { changes: ObjectChange[]; errors: string[] } {
  const hba = hbaLinesOf(decl.declaration, ctx, reading);
  return {
    changes: objectChanges(decl.declaration, reading, hba?.lines ?? null, ctx.passwordMarks),
    errors: [...decl.errors, ...(hba?.errors ?? [])],
  };
}

/** Reads the due primaries, then judges drift. */
export async function objectsPass(
  db: Db,
  opts: { limit?: number; concurrency?: number; timeoutMs?: number } = {},
): Promise<ObjectsPassSummary> {
  const t0 = performance.now();
  const maxAge = setting('PGHERD_OBJECTS_MAX_AGE_MS');
  const due = await loadInputs(
    db,
    sql`i.role = 'primary' AND i.state = 'running'
      AND (e.object_set_id IS NOT NULL OR h.object_set_id IS NOT NULL OR h.object_overrides <> '')
      AND (r.instance_id IS NULL OR r.fingerprint IS DISTINCT FROM i.objects_fingerprint
           OR i.conf_loaded_at > r.conf_loaded_at + interval '1 millisecond'
           OR r.read_at < now() - ${maxAge} * interval '1 millisecond')
    ORDER BY r.read_at NULLS FIRST LIMIT ${opts.limit ?? 500}`,
  );
  const dueMs = performance.now() - t0;
  let failed = 0;
  await mapLimit(due, opts.concurrency ?? 8, async (r) => {
    try {
      await recordObjects(db, Number(r.id), declarationOf(r.inputs).declaration, opts.timeoutMs);
    } catch {
      // Not answering now: the refresh will say so; read again on the next pass.
      failed++;
    }
  });
  const t1 = performance.now();
  const j = await judgeObjects(db);
  return { read: due.length - failed, failed, ...j, ms: { due: dueMs, judge: performance.now() - t1 } };
}

/**
 * What a primary's drift is judged from, as one digest computed by the database: its herd's declaration
 * (sets by id and version, its own lines), its last reading's time, its control plane, the addresses
 * its access rules' placeholders stand for, and the passwords pgherd set on its logins. 'none' for a replica, a herd that declares nothing, or a
 * primary never read. Only the rows whose digest moved are returned, so a quiet fleet costs one scan.
 */
const JUDGE_KEY = sql`CASE WHEN i.role = 'primary' AND r.read_at IS NOT NULL
    AND (e.object_set_id IS NOT NULL OR h.object_set_id IS NOT NULL OR h.object_overrides <> '')
  THEN md5(concat_ws('|', es.id, es.version, hs.id, hs.version, md5(h.object_overrides), r.read_at, h.control_driver, a.members, pl.poolers,
                    md5(h.password_marks::text)))
  ELSE 'none' END`;

/** Each herd's member and pooler addresses, aggregated once for the whole judgement (not a subquery a row). */
const HERD_ADDRESSES = sql`
  a AS (SELECT m.herd_id, string_agg(coalesce(nullif(s.address, ''), s.hostname), ',' ORDER BY coalesce(nullif(s.address, ''), s.hostname)) AS members
        FROM instances m JOIN servers s ON s.id = m.server_id GROUP BY m.herd_id),
  pl AS (SELECT p.herd_id, string_agg(coalesce(nullif(s.address, ''), s.hostname), ',' ORDER BY coalesce(nullif(s.address, ''), s.hostname)) AS poolers
        FROM poolers p JOIN servers s ON s.id = p.server_id GROUP BY p.herd_id)`;

/**
 * Judges drift again where the declaration, the reading or the herd's addresses moved since it was last
 * judged (JUDGE_KEY, kept on the instance). A replica, or a herd that declares nothing: none.
 */
export async function judgeObjects(db: Db, opts: { herdIds?: number[] } = {}): Promise<{ judged: number; drifted: number }> {
  const rows = (
    await db.execute<InputRow & { key: string }>(sql`
    WITH ${HERD_ADDRESSES}
    SELECT * FROM (
      SELECT ${INPUT_COLUMNS}, ${JUDGE_KEY} AS key
      FROM ${INPUT_FROM}
      LEFT JOIN a ON a.herd_id = h.id
      LEFT JOIN pl ON pl.herd_id = h.id
      WHERE ${opts.herdIds ? sql`i.herd_id = ANY(${sql.param(opts.herdIds)}::int[])` : sql`true`}) x
    WHERE x.key IS DISTINCT FROM x.objects_judged_key`)
  ).rows.map((x) => ({ ...x, inputs: inputsOf(x) }));
  const herdIds = [...new Set(rows.filter((r) => r.key !== 'none').map((r) => r.herd_id))];
  const contexts = herdIds.length ? await hbaContexts(db, herdIds) : new Map<number, HerdContext>();
  const writes: { id: number; drift: number | null; key: string }[] = [];
  for (const r of rows) {
    const id = Number(r.id);
    const ctx = contexts.get(r.herd_id);
    if (r.key === 'none' || !ctx) {
      writes.push({ id, drift: null, key: 'none' });
      continue;
    }
    const got = await loadReading(db, id);
    if (!got) continue;
    const d = declarationOf(r.inputs);
    if (!sameAsked(got.reading.asked, toRead(d.declaration))) {
      // It names a database or an extension the reading did not look at: the next pass reads it again.
      await db.execute(sql`UPDATE object_readings SET fingerprint = 'stale' WHERE instance_id = ${id}`);
      continue;
    }
    const { changes, errors } = changesOf(d, ctx, got.reading);
    writes.push({ id, drift: changes.length + errors.length, key: r.key });
  }
  if (writes.length)
    await db.execute(sql`
      UPDATE instances i SET objects_drift = w.drift, objects_judged_key = w.key,
        objects_drift_since = CASE WHEN coalesce(w.drift, 0) = 0 THEN NULL ELSE coalesce(i.objects_drift_since, now()) END
      FROM jsonb_to_recordset(${JSON.stringify(writes)}::jsonb) AS w(id bigint, drift integer, key text)
      WHERE i.id = w.id`);
  // Counted only when something was judged: a quiet pass reads nothing more.
  const drifted = writes.length
    ? await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM instances WHERE objects_drift > 0`)
    : null;
  return { judged: writes.length, drifted: drifted?.rows[0]?.n ?? 0 };
}
