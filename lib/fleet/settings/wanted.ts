// What an instance's settings should be: its environment's group, its herd's group in place of it, its
// herd's own overrides over that, and its own group over everything (the most specific wins, setting by
// setting), each value's formulas computed from its host. Pure: the database's part is in drift-pass.ts.
import { createHash } from 'node:crypto';
import { parseConf } from './conf-text';
import { notTunable } from './tunables';
import { evaluate, type Host } from './values';

export interface GroupText {
  id: number;
  name: string;
  version: number;
  settings: string;
}

export interface WantedInputs {
  environmentGroup: GroupText | null;
  herdGroup: GroupText | null;
  herdOverrides: string;
  instanceGroup: GroupText | null;
  host: Host;
}

export interface WantedSetting {
  /** As the group says it, formulas computed (null: a formula that cannot be, see why). */
  value: string | null;
  /** As written: `{memory_mb / 4}MB`. */
  written: string;
  /** Where it comes from: `group oltp v3 (environment)`, `herd override`. */
  from: string;
  why?: string;
}

/** The settings an instance should run, by name. */
export function wantedSettings(x: WantedInputs): Map<string, WantedSetting> {
  const out = new Map<string, WantedSetting>();
  const layer = (text: string, from: string) => {
    const p = parseConf(text);
    if (!p.ok) {
      // Never saved so (the form checks it), but a row edited by hand: drift that says so, not an error for the fleet.
      out.set(`(${from})`, { value: null, written: '', from, why: `its text does not parse: ${p.errors.join('; ')}` });
      return;
    }
    for (const [name, written] of p.settings) {
      // A row written before the list of tunables was kept, or by hand: shown as drift, never applied.
      const refused = notTunable(name);
      if (refused) {
        out.set(name, { value: null, written, from, why: refused });
        continue;
      }
      const e = evaluate(written, x.host);
      out.set(name, e.ok ? { value: e.value, written, from } : { value: null, written, from, why: e.why });
    }
  };
  // The herd's group stands in place of the environment's; an instance's group is laid over the rest.
  const base = x.herdGroup ?? x.environmentGroup;
  if (base) layer(base.settings, `group ${base.name} v${base.version} (${x.herdGroup ? 'herd' : 'environment'})`);
  if (x.herdOverrides.trim()) layer(x.herdOverrides, 'herd override');
  if (x.instanceGroup) layer(x.instanceGroup.settings, `group ${x.instanceGroup.name} v${x.instanceGroup.version} (instance)`);
  return out;
}

/** Whether anything says what the instance's settings should be. */
export const governed = (x: WantedInputs) => !!(x.environmentGroup || x.herdGroup || x.instanceGroup || x.herdOverrides.trim());

/** A digest of everything the wanted settings are made of: when it moves, the instance is judged again. */
export function wantedDigest(x: WantedInputs): string {
  const g = (t: GroupText | null) => (t ? [t.id, t.version] : null);
  return createHash('sha1')
    .update(JSON.stringify([g(x.environmentGroup), g(x.herdGroup), x.herdOverrides, g(x.instanceGroup), x.host.memoryMb, x.host.cpus]))
    .digest('base64url');
}
