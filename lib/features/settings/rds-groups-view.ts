// An RDS herd's DB parameter groups beside pgherd's groups, read from RDS when the herd page or its API
// asks (bounded): what each group holds against what the herd's pgherd groups say, what was set in it
// outside them, and whether each member runs what the group holds (RDS's ParameterApplyStatus: a static
// value waits for the member's reboot). pgherd's drift from pg_settings says what runs; this says what
// the group will make run at the next reboot, and what someone changed in RDS.
import type { Db } from '@/db/client';
import { rdsClient } from '@/lib/adapters/aws/config';
import { describeRdsParameters, describeRdsPostgres, type RdsGroupParameter, type RdsInstance } from '@/lib/adapters/aws/rds';
import { errorText } from '@/lib/engine/errors';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';
import { loadSnapshot, loadWantedInputs } from '@/lib/fleet/settings/drift-pass';
import { loadCatalog, majorOf } from '@/lib/fleet/settings/read-settings';
import { checkValue, sameValue, show, type SettingMeta } from '@/lib/fleet/settings/values';
import { governed, wantedSettings, type WantedSetting } from '@/lib/fleet/settings/wanted';

export interface RdsGroupDrift {
  name: string;
  /** What pgherd's groups say, shown with its unit ('6MB'), and where it comes from. */
  wanted: string;
  from: string;
  /** What the group holds, shown with its unit; null: not set in it (RDS's default for the engine applies). */
  inGroup: string | null;
}

export interface RdsGroupView {
  name: string;
  members: { label: string; identifier: string; applyStatus: string }[];
  /** Settings pgherd's groups name whose value the group does not hold. */
  drift: RdsGroupDrift[];
  /** Set in the group, and named by no pgherd group: changed in RDS, outside pgherd. */
  outside: { name: string; value: string }[];
}

export type RdsGroupsView = { region: string; groups: RdsGroupView[] } | { error: string };

/** A group's value as pg_settings would show it: a boolean's 1 or 0 as on or off (the group's numbers are in the setting's base unit already). */
const asSetting = (meta: SettingMeta | null, v: string) => (meta?.vartype === 'bool' ? (v === '1' ? 'on' : v === '0' ? 'off' : v) : v);

/** The groups' drift against `wanted` (the herd's one configuration). Pure. */
export function groupDrift(
  wanted: Map<string, WantedSetting>,
  held: RdsGroupParameter[],
  catalog: Map<string, SettingMeta>,
): { drift: RdsGroupDrift[]; outside: { name: string; value: string }[] } {
  const byName = new Map(held.map((p) => [p.name, p.value]));
  const drift: RdsGroupDrift[] = [];
  for (const [name, w] of [...wanted].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (w.value === null) continue; // a formula that cannot be computed: the member's drift says so
    const meta = catalog.get(name) ?? null;
    const checked = meta ? checkValue(meta, w.value) : null;
    const want = checked?.ok ? checked.value : w.value;
    const g = byName.get(name);
    const inGroup = g === undefined ? null : asSetting(meta, g);
    if (inGroup !== null && sameValue(meta, want, inGroup)) continue;
    drift.push({ name, wanted: show(meta, want), from: w.from, inGroup: inGroup === null ? null : show(meta, inGroup) });
  }
  const outside = held
    .filter((p) => !wanted.has(p.name))
    .map((p) => ({ name: p.name, value: show(catalog.get(p.name) ?? null, asSetting(catalog.get(p.name) ?? null, p.value)) }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  return { drift, outside };
}

function bounded<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`RDS did not answer within ${String(ms / 1000)} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Null when the herd has no RDS member; else its groups as RDS has them now, or why they could not be read. */
export async function rdsGroupsView(db: Db, herdId: number, timeoutMs = 5000): Promise<RdsGroupsView | null> {
  const [herd] = await loadHerdRefs(db, [herdId]);
  const members = herd?.members.filter((m) => m.rds) ?? [];
  if (!members.length) return null;
  const regions = [...new Set(members.map((m) => m.rds?.region ?? ''))];
  const [region] = regions;
  if (regions.length !== 1 || !region)
    return { error: `the herd's members are in ${regions.join(', ')}: pgherd reads one region's groups` };
  // The herd's one configuration: the primary's wanted settings (an RDS herd's members share a group).
  const inputs = await loadWantedInputs(
    db,
    members.map((m) => m.id),
  );
  const primary = members.find((m) => m.role === 'primary') ?? members[0];
  const row = primary ? inputs.get(primary.id) : undefined;
  const wanted = row && governed(row.inputs) ? wantedSettings(row.inputs) : new Map<string, WantedSetting>();
  const snap = row?.settings_snapshot_id ? await loadSnapshot(db, row.settings_snapshot_id) : null;
  const catalog = snap ? await loadCatalog(db, majorOf(snap.serverVersionNum)) : new Map<string, SettingMeta>();
  try {
    return await bounded(
      timeoutMs,
      (async () => {
        const client = rdsClient(region);
        const live = new Map((await describeRdsPostgres(client, region)).map((i) => [i.identifier, i]));
        const byGroup = new Map<string, { label: string; instance: RdsInstance }[]>();
        for (const m of members) {
          const i = live.get(m.rds?.identifier ?? '');
          if (!i) continue;
          byGroup.set(i.parameterGroup, [...(byGroup.get(i.parameterGroup) ?? []), { label: m.label, instance: i }]);
        }
        const groups: RdsGroupView[] = [];
        for (const [name, used] of [...byGroup].sort(([a], [b]) => (a < b ? -1 : 1))) {
          const held = name ? await describeRdsParameters(client, name) : [];
          groups.push({
            name,
            members: used.map((u) => ({ label: u.label, identifier: u.instance.identifier, applyStatus: u.instance.parameterApplyStatus })),
            ...groupDrift(wanted, held, catalog),
          });
        }
        return { region, groups };
      })(),
    );
  } catch (err) {
    return { error: `RDS's DB parameter groups could not be read: ${errorText(err)}` };
  }
}

// The herd page refreshes every 5 s: RDS is asked once per 30 s per herd and process, whoever looks.
const recent = new Map<number, { at: number; view: Promise<RdsGroupsView | null> }>();
const RECENT_MS = 30_000;

/** rdsGroupsView, read at most once per 30 s per herd (the page's refresh must not become RDS's load). */
export function recentRdsGroupsView(db: Db, herdId: number): Promise<RdsGroupsView | null> {
  const now = Date.now();
  const hit = recent.get(herdId);
  if (hit && now - hit.at < RECENT_MS) return hit.view;
  for (const [id, r] of recent) if (now - r.at >= RECENT_MS) recent.delete(id);
  const view = rdsGroupsView(db, herdId);
  recent.set(herdId, { at: now, view });
  return view;
}
