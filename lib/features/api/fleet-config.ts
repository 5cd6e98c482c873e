// The readers behind the API's fleet configuration routes (contract/fleet-config.ts): a herd the caller
// may see, a herd's restore window, and the changelists' rows as the API answers them.
import { eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { backupPolicies, herds, parameterGroups } from '@/db/schema';
import { demand, type Access } from '@/lib/engine/access';
import { ApiError } from './request-errors';

/** The herd's environment, once the caller is a viewer there (404: no such herd; 403: not theirs). */
export async function visibleHerd(db: Db, access: Access, id: number): Promise<number> {
  const [h] = await db.select({ environmentId: herds.environmentId }).from(herds).where(eq(herds.id, id));
  if (!h) throw new ApiError(404, 'no such herd');
  await demand(db, access, 'viewer', 'This herd', [h.environmentId]);
  return h.environmentId;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

/** From the end of its oldest backup in the repository to its last archived WAL, and pgherd's operations on it meanwhile. */
export async function restoreWindow(db: Db, herdId: number) {
  const w = await db.execute<{ earliest: Date | null; latest: Date | null; backups: number }>(sql`
    SELECT (SELECT min(stopped_at) FROM backups WHERE herd_id = ${herdId} AND gone_at IS NULL) AS earliest,
      (SELECT max(last_archived_at) FROM instances WHERE herd_id = ${herdId}) AS latest,
      (SELECT count(*)::int FROM backups WHERE herd_id = ${herdId} AND gone_at IS NULL) AS backups`);
  const x = w.rows[0] ?? { earliest: null, latest: null, backups: 0 };
  const ops = x.earliest
    ? await db.execute<{ id: string | number; action: string; status: string; started_at: Date }>(sql`
        SELECT DISTINCT o.id, o.action, o.status::text AS status, o.started_at FROM operations o JOIN operation_targets t ON t.operation_id = o.id
        WHERE (t.herd_id = ${herdId} OR t.instance_id IN (SELECT id FROM instances WHERE herd_id = ${herdId}))
          AND o.started_at >= ${iso(x.earliest)}::timestamptz AND (${iso(x.latest)}::timestamptz IS NULL OR o.started_at <= ${iso(x.latest)}::timestamptz)
        ORDER BY o.started_at DESC LIMIT 200`)
    : { rows: [] };
  return {
    earliest: iso(x.earliest),
    latest: iso(x.latest),
    backups: x.backups,
    operations: ops.rows.map((o) => ({
      id: Number(o.id),
      action: o.action,
      status: o.status,
      startedAt: new Date(o.started_at).toISOString(),
    })),
  };
}

type Row = Record<string, unknown> & { __id: number };
const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function drPairOf(r: Row) {
  return {
    herdId: r.__id,
    herd: str(r.name) ?? '',
    environment: str(r.environment) ?? '',
    primary: str(r.primary),
    primaryState: str(r.primaryState),
    primarySite: str(r.primarySite),
    candidate: str(r.candidate),
    candidateSite: str(r.candidateSite),
    lagBytes: num(r.lag),
  };
}

/** The policies of a page of the changelist, with their columns (never a secret: the cipher passphrase is in a file). */
export async function policiesOf(db: Db, rows: Row[]) {
  const ids = rows.map((r) => r.__id);
  const full = ids.length ? await db.select().from(backupPolicies).where(inArray(backupPolicies.id, ids)) : [];
  return rows.flatMap((r) => {
    const p = full.find((x) => x.id === r.__id);
    if (!p) return [];
    return [
      {
        id: p.id,
        environment: str(r.environment) ?? '',
        herdId: p.herdId,
        scope: str(r.scope) ?? '',
        tool: p.tool,
        repoKind: p.repoKind,
        repository: str(r.repository) ?? '',
        retentionFull: p.retentionFull,
        compressType: p.compressType,
        encrypt: p.encrypt,
        fromStandby: p.fromStandby,
        archiveTimeoutSeconds: p.archiveTimeoutSeconds,
        herdsConfigured: Number(r.herds),
      },
    ];
  });
}

export async function groupsOf(db: Db, rows: Row[]) {
  const ids = rows.map((r) => r.__id);
  const full = ids.length ? await db.select().from(parameterGroups).where(inArray(parameterGroups.id, ids)) : [];
  return rows.flatMap((r) => {
    const g = full.find((x) => x.id === r.__id);
    if (!g) return [];
    return [
      {
        id: g.id,
        name: g.name,
        description: g.description,
        version: g.version,
        settings: g.settings,
        assigned: str(r.assigned) ?? '',
        updatedAt: g.updatedAt.toISOString(),
      },
    ];
  });
}
