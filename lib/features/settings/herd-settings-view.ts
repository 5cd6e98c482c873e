// The herd page's settings: each member's drift against its groups, the settings its members run
// differently, and what changed on the herd between two times (default: the last day).
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { SettingReading } from '@/db/schema';
import { PER_MEMBER } from '@/lib/fleet/settings/conf-text';
import { driftOf, type DriftEntry } from '@/lib/fleet/settings/drift';
import { loadSnapshot, loadWantedInputs } from '@/lib/fleet/settings/drift-pass';
import { changesWithin, type SettingsChange } from '@/lib/fleet/settings/history';
import { loadCatalog, majorOf } from '@/lib/fleet/settings/read-settings';
import { show, type SettingMeta } from '@/lib/fleet/settings/values';
import { governed, wantedSettings } from '@/lib/fleet/settings/wanted';

export interface MemberSettingsView {
  id: number;
  label: string;
  role: string;
  /** Its groups, in words ("group oltp v3 (environment), herd overrides"), or '' for none. */
  groups: string;
  readAt: Date | null;
  drift: (DriftEntry & { changedAt: Date | null; operationId: number | null })[];
}

export interface HerdSettingsView {
  members: MemberSettingsView[];
  /** Settings whose values differ between members (per-member ones left out), each member's value. */
  differing: { name: string; values: { label: string; value: string }[] }[];
  changes: SettingsChange[];
  from: Date;
  to: Date;
}

/** Differences that are the member's role or pgherd's own session, not its configuration. */
const NOT_CONFIGURATION = new Set(['in_hot_standby', 'transaction_read_only', 'transaction_isolation', 'transaction_deferrable']);
const SESSION_SOURCES = new Set(['client', 'session', 'database', 'user', 'interactive']);

/** When each setting last changed on the instance (as Postgres says it took effect), and by which operation. */
async function lastChanges(db: Db, instanceId: number, names: string[]): Promise<Map<string, { at: Date; op: number | null }>> {
  if (!names.length) return new Map();
  const r = await db.execute<{ name: string; at: Date; op: string | number | null }>(sql`
    SELECT DISTINCT ON (k) k AS name, s.effective_at AS at, s.operation_id AS op
    FROM setting_snapshots s, jsonb_object_keys(s.changed) k
    WHERE s.instance_id = ${instanceId} AND k = ANY(${sql.param(names)}::text[])
    ORDER BY k, s.effective_at DESC`);
  return new Map(r.rows.map((x) => [x.name, { at: new Date(x.at), op: x.op === null ? null : Number(x.op) }]));
}

export async function herdSettingsView(db: Db, herdId: number, window: { from?: Date; to?: Date } = {}): Promise<HerdSettingsView> {
  const to = window.to ?? new Date();
  const from = window.from ?? new Date(to.getTime() - 86_400_000);
  const rows = await db.execute<{ id: string | number; label: string; role: string }>(sql`
    SELECT i.id, s.hostname || ':' || i.port AS label, i.role::text AS role
    FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.herd_id = ${herdId} ORDER BY i.id`);
  const ids = rows.rows.map((r) => Number(r.id));
  const inputs = await loadWantedInputs(db, ids);
  const catalogs = new Map<number, Map<string, SettingMeta>>();
  const readings = new Map<number, Record<string, SettingReading>>();
  const members: MemberSettingsView[] = [];
  let catalog: Map<string, SettingMeta> = new Map();
  for (const r of rows.rows) {
    const id = Number(r.id);
    const row = inputs.get(id);
    const snap = row?.settings_snapshot_id ? await loadSnapshot(db, row.settings_snapshot_id) : null;
    if (snap) {
      const major = majorOf(snap.serverVersionNum);
      let c = catalogs.get(major);
      if (!c) {
        c = await loadCatalog(db, major);
        catalogs.set(major, c);
      }
      catalog = c;
      readings.set(id, snap.settings);
    }
    const x = row?.inputs;
    const groups = x
      ? [
          (x.herdGroup ?? x.environmentGroup) &&
            `group ${(x.herdGroup ?? x.environmentGroup)?.name ?? ''} v${String((x.herdGroup ?? x.environmentGroup)?.version ?? '')} (${x.herdGroup ? 'herd' : 'environment'})`,
          x.herdOverrides.trim() && 'herd overrides',
          x.instanceGroup && `group ${x.instanceGroup.name} v${String(x.instanceGroup.version)} (instance)`,
        ]
          .filter(Boolean)
          .join(', ')
      : '';
    const drift =
      x && snap && governed(x)
        ? driftOf(wantedSettings(x), snap.settings, catalogs.get(majorOf(snap.serverVersionNum)) ?? new Map<string, SettingMeta>())
        : [];
    const when = await lastChanges(
      db,
      id,
      drift.map((d) => d.name),
    );
    members.push({
      id,
      label: r.label,
      role: r.role,
      groups,
      readAt: snap?.readAt ?? null,
      drift: drift.map((d) => ({ ...d, changedAt: when.get(d.name)?.at ?? null, operationId: when.get(d.name)?.op ?? null })),
    });
  }
  const differing: HerdSettingsView['differing'] = [];
  if (readings.size > 1) {
    const names = new Set([...readings.values()].flatMap((s) => Object.keys(s)));
    for (const name of [...names].sort()) {
      if (PER_MEMBER.has(name) || NOT_CONFIGURATION.has(name)) continue;
      const values = members
        .filter((m) => readings.has(m.id))
        .map((m) => {
          const v = readings.get(m.id)?.[name];
          return {
            label: m.label,
            value: v ? `${show(catalog.get(name) ?? null, v.v)}${v.p ? ' (a restart pending)' : ''}` : 'not set',
            source: v?.s,
          };
        });
      if (values.some((v) => v.source && SESSION_SOURCES.has(v.source))) continue;
      if (new Set(values.map((v) => v.value)).size > 1)
        differing.push({ name, values: values.map(({ label, value }) => ({ label, value })) });
    }
  }
  return { members, differing, changes: await changesWithin(db, { herdId }, from, to), from, to };
}
