// Tear down a restored herd: stops each member of a herd that pgherd's Restore made, removes what the
// restore laid down on its server (its data directory, pgBackRest's files, socket folder and log beside it),
// and forgets the herd. Only a herd pgherd restored (restored_from_herd_id set) is ever torn down: a herd
// of the fleet is refused, whatever an admin ticks. Run by hand, or by the worker when the herd expires.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { defineHerdAction, productionWarning, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { refuse } from '@/lib/fleet/refusal';
import { removeRestored } from './restore-steps';

interface Restored {
  restoredFrom: number | null;
  restoredTo: string;
  expiresAt: Date | null;
}

async function prepare(herds: { id: number }[], _params: unknown, db: Db): Promise<Map<number, Restored>> {
  if (!herds.length) return new Map();
  const r = await db.execute<{ id: number; restored_from_herd_id: number | null; restored_to: string; expires_at: Date | null }>(sql`
    SELECT id, restored_from_herd_id, restored_to, expires_at FROM herds WHERE id = ANY(${sql.param(herds.map((h) => h.id))}::int[])`);
  return new Map(
    r.rows.map((x) => [
      x.id,
      { restoredFrom: x.restored_from_herd_id, restoredTo: x.restored_to, expiresAt: x.expires_at ? new Date(x.expires_at) : null },
    ]),
  );
}

export const tearDownRestoredAction = defineHerdAction({
  name: 'tear-down-restored',
  label: 'Tear down a restored herd',
  permission: 'admin',
  dangerous: true,
  prepare,
  plan: (h, { prepared }) => {
    const r = prepared.get(h.id);
    if (r?.restoredFrom === null || r?.restoredFrom === undefined)
      return refuse('not-applicable', `${h.label} was not made by pgherd's Restore: only a restored herd is torn down`);
    const bad = h.members.find((m) => !m.dataDirectory.startsWith('/') || m.dataDirectory.split('/').length < 3);
    if (bad) return refuse('not-applicable', `${bad.label} has no data directory pgherd can remove (${bad.dataDirectory || 'none'})`);
    const steps: ActionStep[] = h.members.map((m) => ({
      name: `stop ${m.label} and remove it`,
      does: { kind: 'restore.tear-down-member', instance: memberArg(m), dataDirectory: m.dataDirectory },
      says: `stop ${m.label} (immediate) and remove ${m.dataDirectory} and pgBackRest's files, socket folder and log beside it`,
      timeoutMs: 180_000,
      run: async (x) => removeRestored(x.deps, x, { server: { ssh: m.ssh }, dataDirectory: m.dataDirectory, pgVersion: m.pgVersion }),
    }));
    return {
      steps: [
        ...steps,
        {
          name: 'forget the herd',
          does: { kind: 'inventory.delete-herd', herd: h.id },
          says: `remove ${h.label} and its instances from the inventory`,
          timeoutMs: 30_000,
          run: async (x) => {
            await x.deps.db.execute(sql`DELETE FROM herds WHERE id = ${h.id} AND restored_from_herd_id IS NOT NULL`);
            x.deps.outcome?.(`${h.label} torn down`);
          },
        },
      ],
      facts: [
        { label: 'Restored', value: r.restoredTo || '?' },
        { label: 'Expires', value: r.expiresAt ? r.expiresAt.toISOString() : 'not set' },
      ],
      warnings: [...productionWarning(h), 'everything written to the restored herd since its restore is lost'],
    };
  },
});
