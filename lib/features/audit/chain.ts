// The audit log's hash chain, for a SIEM: every entry, once committed, is sealed by one worker at a time
// (the `audit.seal` chore) in the order it is sealed, with seq (1, 2, ...), the hash of the entry sealed
// before it, and its own hash: SHA-256 (hex) of that previous hash followed by the entry as canonical JSON
// (keys sorted at every depth, no spaces). An export (GET /api/v1/audit/export) gives each entry with its
// seq and both hashes, so whoever keeps them can tell an entry changed (its hash no longer matches), one
// taken out (a seq missing, or the next one's prevHash not its hash) or one put in. Entries are sealed in
// seq order, not id order: one committed late is sealed with the next pass, after those sealed before.
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';

/** The hash before the first entry's. */
export const GENESIS = '0'.repeat(64);

/** An audit entry as the chain hashes it and the export gives it. */
export interface ChainedEntry {
  id: number;
  /** UTC, to the microsecond: 2026-11-28T18:02:15.123456Z */
  at: string;
  user: string;
  address: string;
  action: string;
  objectType: string;
  objectId: string;
  object: string;
  environmentId: number | null;
  changes: unknown;
}

export interface ChainLine {
  seq: number;
  prevHash: string;
  hash: string;
  entry: ChainedEntry;
}

/** JSON with every object's keys sorted, at every depth: the same text for the same value, wherever it is computed. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return v === undefined ? 'null' : JSON.stringify(v);
}

export const chainHash = (prevHash: string, entry: ChainedEntry): string =>
  createHash('sha256').update(prevHash).update(canonicalJson(entry)).digest('hex');

/** The entries' columns as the chain reads them (e: audit_entries). */
export const ENTRY_COLUMNS = sql`e.id::int8 AS id, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
  e.username AS "user", e.remote_addr AS address, e.action, e.object_type AS "objectType", e.object_id AS "objectId",
  e.object_label AS object, e.environment_id AS "environmentId", e.changes`;

type EntryRow = Omit<ChainedEntry, 'id'> & { id: string | number };
export const entryOf = (r: EntryRow): ChainedEntry => ({ ...r, id: Number(r.id) });

/**
 * Seals up to `limit` entries not sealed yet, in id order, after the last sealed one; the number sealed.
 * Looked for among the entries past the last sealed id (a first run: the whole log, a batch at a time)
 * and those of the last day (one committed after later ids were sealed).
 */
export async function sealAudit(db: Db, limit = 5000): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('pgherd-audit-chain'))`);
    const [last] = (
      await tx.execute<{ seq: string | number; hash: string; entry_id: string | number }>(
        sql`SELECT seq, hash, (SELECT max(entry_id) FROM audit_chain) AS entry_id FROM audit_chain ORDER BY seq DESC LIMIT 1`,
      )
    ).rows;
    const rows = (
      await tx.execute<EntryRow>(sql`
        SELECT ${ENTRY_COLUMNS} FROM audit_entries e
        WHERE (e.id > ${last ? Number(last.entry_id) : 0} OR e.at > now() - interval '1 day')
          AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = e.id)
        ORDER BY e.id LIMIT ${limit}`)
    ).rows.map(entryOf);
    if (!rows.length) return 0;
    let seq = last ? Number(last.seq) : 0;
    let prev = last?.hash ?? GENESIS;
    const sealed = rows.map((entry) => {
      const hash = chainHash(prev, entry);
      const row = { seq: ++seq, entryId: entry.id, prevHash: prev, hash };
      prev = hash;
      return row;
    });
    await tx.execute(sql`
      INSERT INTO audit_chain (seq, entry_id, prev_hash, hash)
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(sealed)}::jsonb) AS s("seq" bigint, "entryId" bigint, "prevHash" text, "hash" text)`);
    return sealed.length;
  });
}

export interface ChainCheck {
  lines: number;
  /** Each line whose hash is not its entry's, or whose prevHash is not the hash of the line before it. */
  broken: { seq: number; why: string }[];
  /** Seqs missing between two lines given (an export of every environment has none). */
  gaps: { after: number; before: number }[];
}

/** Checks an export's lines: each one's hash, and (for consecutive seqs) that it follows the one before. */
export function checkChain(lines: ChainLine[]): ChainCheck {
  const out: ChainCheck = { lines: lines.length, broken: [], gaps: [] };
  let before: ChainLine | null = null;
  for (const l of lines) {
    if (chainHash(l.prevHash, l.entry) !== l.hash)
      out.broken.push({ seq: l.seq, why: 'its hash is not its entry’s: the entry was changed' });
    if (before) {
      if (l.seq === before.seq + 1 && l.prevHash !== before.hash)
        out.broken.push({ seq: l.seq, why: 'its prevHash is not the hash of the entry before it' });
      else if (l.seq > before.seq + 1) out.gaps.push({ after: before.seq, before: l.seq });
      else if (l.seq <= before.seq) out.broken.push({ seq: l.seq, why: 'out of order' });
    }
    before = l;
  }
  return out;
}

/**
 * The sealed entries whose time is in [from, to), in seq order, `batch` a query: those of the environments
 * given (null: every one, and the entries of none, as sign-ins; a global viewer's).
 */
export async function* exportAudit(
  db: Db,
  opts: { from: Date; to: Date; environments: number[] | null },
  batch = 1000,
): AsyncGenerator<ChainLine> {
  const scope = opts.environments === null ? sql`true` : sql`e.environment_id = ANY(${sql.param(opts.environments)}::int[])`;
  const inRange = sql`e.at >= ${opts.from.toISOString()}::timestamptz AND e.at < ${opts.to.toISOString()}::timestamptz AND ${scope}`;
  const [first] = (
    await db.execute<{ seq: string | number | null }>(sql`
      SELECT min(c.seq) AS seq FROM audit_entries e JOIN audit_chain c ON c.entry_id = e.id WHERE ${inRange}`)
  ).rows;
  if (first?.seq === null || first?.seq === undefined) return;
  let after = Number(first.seq) - 1;
  for (;;) {
    const rows = (
      await db.execute<EntryRow & { seq: string | number; prev_hash: string; hash: string }>(sql`
        SELECT c.seq, c.prev_hash, c.hash, ${ENTRY_COLUMNS}
        FROM audit_chain c JOIN audit_entries e ON e.id = c.entry_id
        WHERE c.seq > ${after} AND ${inRange}
        ORDER BY c.seq LIMIT ${batch}`)
    ).rows;
    for (const r of rows) {
      const { seq, prev_hash, hash, ...entry } = r;
      yield { seq: Number(seq), prevHash: prev_hash, hash, entry: entryOf(entry) };
    }
    if (rows.length < batch) return;
    after = Number(rows[rows.length - 1]?.seq);
  }
}
