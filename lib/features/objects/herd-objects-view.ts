// A herd's objects as its page shows them: what declares them, when its primary was last read, and each
// difference with what would change it (the statement Apply runs, or why it cannot).
import type { Db } from '@/db/client';
import { declared } from '@/lib/fleet/objects/declaration';
import type { ObjectChange } from '@/lib/fleet/objects/diff';
import { changesOf, hbaContexts, NO_CONTEXT, loadDeclarations, loadReading } from '@/lib/fleet/objects/objects-pass';
import { sql } from 'drizzle-orm';

export interface HerdObjectsView {
  declared: boolean;
  /** `set app-roles v3 (environment) and herd overrides` */
  from: string;
  readAt: Date | null;
  changes: (ObjectChange & { acceptable: boolean })[];
  errors: string[];
}

const ACCEPTABLE = /^(role|database|extension) \S+$/;

export async function herdObjectsView(db: Db, herdId: number): Promise<HerdObjectsView> {
  const decl = (await loadDeclarations(db, [herdId])).get(herdId);
  if (!decl || !declared(decl.inputs)) return { declared: false, from: '', readAt: null, changes: [], errors: [] };
  const set = decl.inputs.herdSet ?? decl.inputs.environmentSet;
  const from = [
    ...(set ? [`set ${set.name} v${set.version} (${decl.inputs.herdSet ? 'herd' : 'environment'})`] : []),
    ...(decl.inputs.herdOverrides.trim() ? ['the herd\u2019s own lines'] : []),
  ].join(' and ');
  const primary = (
    await db.execute<{ id: string | number }>(sql`
    SELECT id FROM instances WHERE herd_id = ${herdId} AND role = 'primary' ORDER BY id LIMIT 1`)
  ).rows[0];
  const got = primary ? await loadReading(db, Number(primary.id)) : null;
  if (!got) return { declared: true, from, readAt: null, changes: [], errors: decl.errors };
  const ctx = (await hbaContexts(db, [herdId])).get(herdId) ?? NO_CONTEXT;
  const { changes, errors } = changesOf(decl, ctx, got.reading);
  return {
    declared: true,
    from,
    readAt: got.readAt,
    changes: changes.map((c) => ({ ...c, acceptable: (c.what === 'undeclared' || c.what === 'differs') && ACCEPTABLE.test(c.name) })),
    errors,
  };
}
