// Accepting drift: what an instance runs becomes what its groups say, so that it is no longer drift. Into
// the layer the setting comes from (its group: a new version, for every instance it is assigned to), or
// into its herd's overrides (that herd alone). The other way, putting it back, is Apply settings.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { demand, type Actor } from '@/lib/engine/access';
import { writeAudit } from '@/lib/engine/write-audit';
import { parseConf, renderConf } from '@/lib/fleet/settings/conf-text';
import { driftFor, judgeDrift, loadWantedInputs } from '@/lib/fleet/settings/drift-pass';
import { notTunable } from '@/lib/fleet/settings/tunables';

export class AcceptError extends Error {}

/** Text a group or a herd can hold: what runs may be a value the group's syntax cannot (a backslash, say). */
function keepable(text: string, where: string): string {
  const p = parseConf(text);
  if (!p.ok) throw new AcceptError(`what runs cannot be kept as a group's setting: ${p.errors.join('; ')}`);
  // What the layer held before is written again with it: a setting stored there by an older version is not kept.
  const refused = [...p.settings.keys()].map(notTunable).filter((x) => x !== null);
  if (refused.length) throw new AcceptError(`${where} holds what no group may set (${refused.join('; ')}): take it out first`);
  return text;
}

export interface Accepted {
  name: string;
  value: string;
  /** Where it was written: `group oltp v4`, `herd override`. */
  into: string;
}

/** Writes what `instanceId` runs for `names` into its groups (`into: 'source'`) or its herd's overrides. */
export async function acceptDrift(db: Db, actor: Actor, instanceId: number, names: string[], into: 'source' | 'herd'): Promise<Accepted[]> {
  const row = (await loadWantedInputs(db, [instanceId])).get(instanceId);
  if (!row) throw new AcceptError(`instance #${instanceId} does not exist`);
  const drift = await driftFor(db, instanceId);
  const entries = new Map((drift?.entries ?? []).map((e) => [e.name, e]));
  const wanted = [...new Set(names)];
  if (!wanted.length) throw new AcceptError('name the settings to accept');
  /** What each accepted setting runs (as people write it), and the layer it comes from. */
  const running = new Map<string, { value: string; from: string }>();
  for (const n of wanted) {
    const refused = notTunable(n);
    if (refused) throw new AcceptError(refused);
    const e = entries.get(n);
    if (!e) throw new AcceptError(`${n} is not drifted on this instance`);
    if (e.kind !== 'differs' || e.running === null)
      throw new AcceptError(`${n} cannot be accepted (${e.why ?? e.kind}): what runs is not a value to keep`);
    running.set(n, { value: e.runningShown ?? e.running, from: e.from });
  }
  const valueOf = (n: string) => running.get(n)?.value ?? '';
  const label = await db.execute<{ label: string; environment_id: number; herd_id: number; herd: string }>(sql`
    SELECT s.hostname || ':' || i.port AS label, h.environment_id, h.id AS herd_id, h.name AS herd
    FROM instances i JOIN servers s ON s.id = i.server_id JOIN herds h ON h.id = i.herd_id WHERE i.id = ${instanceId}`);
  const me = label.rows[0];
  if (!me) throw new AcceptError(`instance #${instanceId} does not exist`);

  // Each setting goes to its layer: a group (by id) or the herd's overrides.
  const layers = new Map<string, { group: number | null; names: string[] }>();
  for (const [n, e] of running) {
    const group =
      into === 'herd' || e.from === 'herd override'
        ? null
        : e.from.endsWith('(instance)')
          ? row.ig_id
          : e.from.endsWith('(herd)')
            ? row.hg_id
            : row.eg_id;
    const key = group === null ? 'herd' : `g${group}`;
    const l = layers.get(key) ?? { group, names: [] };
    l.names.push(n);
    layers.set(key, l);
  }
  const out: Accepted[] = [];
  await db.transaction(async (tx) => {
    for (const l of layers.values()) {
      const values = (s: Map<string, string>) => {
        for (const n of l.names) s.set(n, valueOf(n));
      };
      if (l.group === null) {
        await demand(tx, actor.access, 'admin', `Changing the setting overrides of herd ${me.herd}`, [me.environment_id]);
        const [h] = (await tx.execute<{ o: string }>(sql`SELECT setting_overrides AS o FROM herds WHERE id = ${me.herd_id} FOR UPDATE`))
          .rows;
        const p = parseConf(h?.o ?? '');
        if (!p.ok) throw new AcceptError(`the herd's overrides do not parse: ${p.errors.join('; ')}`);
        values(p.settings);
        const text = keepable(renderConf(p.settings), `herd ${me.herd}'s overrides`);
        await tx.execute(sql`UPDATE herds SET setting_overrides = ${text}, updated_at = now() WHERE id = ${me.herd_id}`);
        await writeAudit(tx, {
          user: actor,
          remoteAddr: actor.remoteAddr,
          action: 'settings.accept',
          objectType: 'herds',
          objectId: String(me.herd_id),
          objectLabel: me.herd,
          environmentId: me.environment_id,
          changes: { settingOverrides: [h?.o ?? '', text] },
        });
        for (const n of l.names) out.push({ name: n, value: valueOf(n), into: 'herd override' });
        continue;
      }
      // A group spans environments: changing one is a global admin's.
      await demand(tx, actor.access, 'admin', 'Changing a parameter group', [null]);
      const [g] = (
        await tx.execute<{ name: string; settings: string }>(
          sql`SELECT name, settings FROM parameter_groups WHERE id = ${l.group} FOR UPDATE`,
        )
      ).rows;
      if (!g) throw new AcceptError(`parameter group #${l.group} is gone`);
      const p = parseConf(g.settings);
      if (!p.ok) throw new AcceptError(`group ${g.name} does not parse: ${p.errors.join('; ')}`);
      values(p.settings);
      const text = keepable(renderConf(p.settings), `group ${g.name}`);
      // Accepted already (a second click, a concurrent accept): no version that changes nothing.
      if (text === g.settings) {
        for (const n of l.names) out.push({ name: n, value: valueOf(n), into: `group ${g.name} (already)` });
        continue;
      }
      const [v] = (
        await tx.execute<{ version: number }>(
          sql`UPDATE parameter_groups SET settings = ${text}, version = version + 1, updated_at = now() WHERE id = ${l.group} RETURNING version`,
        )
      ).rows;
      await tx.execute(sql`
        INSERT INTO parameter_group_versions (group_id, version, name, settings, author, note)
        VALUES (${l.group}, ${v?.version ?? 0}, ${g.name}, ${text}, ${actor.username}, ${`accepted ${l.names.join(', ')} from ${me.label}`})`);
      await writeAudit(tx, {
        user: actor,
        remoteAddr: actor.remoteAddr,
        action: 'settings.accept',
        objectType: 'parameter-groups',
        objectId: String(l.group),
        objectLabel: g.name,
        environmentId: null,
        changes: { settings: [g.settings, text] },
      });
      for (const n of l.names) out.push({ name: n, value: valueOf(n), into: `group ${g.name} v${v?.version ?? '?'}` });
    }
  });
  await judgeDrift(db);
  return out;
}
