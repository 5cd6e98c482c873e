// Drift: where what an instance runs is not what its groups say. Each setting the groups name is compared,
// as a value (checkValue), with what Postgres reported; a setting Postgres does not have, a value it would
// not take and a formula that cannot be computed are drift too (Apply refuses them, and says why).
import type { SettingReading } from '@/db/schema';
import { checkValue, sameValue, show, type SettingMeta } from './values';
import type { WantedSetting } from './wanted';

export type DriftKind = 'differs' | 'pending-restart' | 'unknown-setting' | 'invalid' | 'unresolved';

export interface DriftEntry {
  name: string;
  kind: DriftKind;
  /** What the group says, as written and as Postgres would show it (null: not a value it takes). */
  written: string;
  /** As written, its formulas computed (what Apply writes): '4096MB'. Null: a formula that cannot be. */
  resolved: string | null;
  wanted: string | null;
  /** What runs, as pg_settings shows it, and in words with its unit. */
  running: string | null;
  runningShown: string | null;
  wantedShown: string | null;
  from: string;
  /** Where the running value comes from (pg_settings' source and file). */
  source: string | null;
  why?: string;
}

/** Sources that speak of pgherd's own session, not of the server: their values are not compared. */
const SESSION_SOURCES = new Set(['client', 'session', 'database', 'user', 'interactive']);

export function driftOf(
  wanted: Map<string, WantedSetting>,
  running: Record<string, SettingReading>,
  catalog: Map<string, SettingMeta>,
): DriftEntry[] {
  const out: DriftEntry[] = [];
  for (const [name, w] of wanted) {
    const meta = catalog.get(name) ?? null;
    const r = Object.hasOwn(running, name) ? running[name] : undefined;
    const base = {
      name,
      written: w.written,
      resolved: w.value,
      from: w.from,
      running: r?.v ?? null,
      runningShown: r ? show(meta, r.v) : null,
      source: r ? [r.s ?? 'default', r.f].filter(Boolean).join(' ') : null,
    };
    if (w.value === null) {
      out.push({ ...base, kind: 'unresolved', wanted: null, wantedShown: null, why: w.why ?? 'cannot be computed' });
      continue;
    }
    if (!meta || !r) {
      // An extension's setting (a dotted name) exists once the extension is loaded; without it, Postgres keeps it as text.
      out.push({ ...base, kind: 'unknown-setting', wanted: null, wantedShown: w.value, why: `this Postgres has no setting ${name}` });
      continue;
    }
    const c = checkValue(meta, w.value);
    if (!c.ok) {
      out.push({ ...base, kind: 'invalid', wanted: null, wantedShown: w.value, why: c.why });
      continue;
    }
    if (r.s && SESSION_SOURCES.has(r.s)) continue;
    if (sameValue(meta, c.value, r.v)) continue;
    out.push({
      ...base,
      kind: r.p ? 'pending-restart' : 'differs',
      wanted: c.value,
      wantedShown: show(meta, c.value),
      ...(r.p ? { why: 'a changed value waits for a restart' } : {}),
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}
