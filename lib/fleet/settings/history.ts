// The settings' history, from the snapshots: what an instance ran at any past time, and what changed on an
// instance or a herd between two times (each change with its time, as Postgres says it took effect, and the
// operation that made it, if one did).
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { SettingReading } from '@/db/schema';
import { keptChanges, keptSettings } from './secrets';

export interface SettingsAt {
  instanceId: number;
  /** When the settings in force at that time took effect (the configuration load that made them). */
  effectiveAt: Date;
  readAt: Date;
  serverVersionNum: number;
  settings: Record<string, SettingReading>;
}

/** What `instanceId` ran at `at` (null: its settings had not been read by then). */
export async function settingsAt(db: Db, instanceId: number, at: Date): Promise<SettingsAt | null> {
  const r = await db.execute<{ effective_at: Date; read_at: Date; vnum: number; settings: Record<string, SettingReading> }>(sql`
    SELECT effective_at, read_at, server_version_num AS vnum, settings FROM setting_snapshots
    WHERE instance_id = ${instanceId} AND effective_at <= ${at}
    ORDER BY effective_at DESC, id DESC LIMIT 1`);
  const x = r.rows[0];
  return x
    ? {
        instanceId,
        effectiveAt: new Date(x.effective_at),
        readAt: new Date(x.read_at),
        serverVersionNum: x.vnum,
        settings: keptSettings(x.settings),
      }
    : null;
}

export interface SettingsChange {
  instanceId: number;
  /** host:port as the inventory names it now ('' when it is no longer in the inventory). */
  label: string;
  at: Date;
  readAt: Date;
  changes: Record<string, { from: string | null; to: string | null }>;
  operationId: number | null;
}

/** What changed on the instances (or every member of a herd, past ones too) in (from, to], oldest first; at most `limit`. */
export async function changesWithin(
  db: Db,
  on: { instanceId: number } | { herdId: number },
  from: Date,
  to: Date,
  limit = 500,
): Promise<SettingsChange[]> {
  const who = 'instanceId' in on ? sql`s.instance_id = ${on.instanceId}` : sql`s.herd_id = ${on.herdId}`;
  const r = await db.execute<{
    instance_id: string | number;
    label: string | null;
    effective_at: Date;
    read_at: Date;
    changed: Record<string, { from: string | null; to: string | null }>;
    operation_id: string | number | null;
  }>(sql`
    SELECT s.instance_id, (SELECT v.hostname || ':' || i.port FROM instances i JOIN servers v ON v.id = i.server_id WHERE i.id = s.instance_id) AS label,
           s.effective_at, s.read_at, s.changed, s.operation_id
    FROM setting_snapshots s
    WHERE ${who} AND s.effective_at > ${from} AND s.effective_at <= ${to} AND s.changed <> '{}'::jsonb
    ORDER BY s.effective_at, s.id LIMIT ${limit}`);
  return r.rows.map((x) => ({
    instanceId: Number(x.instance_id),
    label: x.label ?? '',
    at: new Date(x.effective_at),
    readAt: new Date(x.read_at),
    changes: keptChanges(x.changed),
    operationId: x.operation_id === null ? null : Number(x.operation_id),
  }));
}
