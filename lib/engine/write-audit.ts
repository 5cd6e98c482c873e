import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';

export interface AuditInput {
  user: { id: number | null; username: string };
  remoteAddr?: string;
  action: string;
  objectType: string;
  objectId?: string;
  objectLabel?: string;
  environmentId?: number | null;
  changes?: Record<string, [unknown, unknown]>;
}

type Tx = Pick<Db, 'execute'>;

/**
 * Audit rows are only ever inserted; nothing in pgherd updates or deletes them. Any number of entries
 * is one statement with nine parameters, one array a column (an operation on 10,000 targets writes
 * 10,001 entries: as rows of parameters that would be several statements and most of the submit's time).
 */
export async function writeAudit(db: Tx, e: AuditInput | AuditInput[]): Promise<void> {
  const list = Array.isArray(e) ? e : [e];
  if (!list.length) return;
  const column = <T>(f: (x: AuditInput) => T) => sql.param(list.map(f));
  await db.execute(sql`
    INSERT INTO audit_entries (user_id, username, remote_addr, action, object_type, object_id, object_label, environment_id, changes)
    SELECT * FROM unnest(${column((x) => x.user.id)}::int[], ${column((x) => x.user.username)}::text[],
      ${column((x) => x.remoteAddr ?? '')}::text[], ${column((x) => x.action)}::text[], ${column((x) => x.objectType)}::text[],
      ${column((x) => x.objectId ?? '')}::text[], ${column((x) => (x.objectLabel ?? '').slice(0, 500))}::text[],
      ${column((x) => x.environmentId ?? null)}::int[], ${column((x) => JSON.stringify(x.changes ?? {}))}::jsonb[])`);
}

/** The fields whose values differ, as { field: [old, new] }. */
export function diffChanges(before: Record<string, unknown> | null, after: Record<string, unknown>): Record<string, [unknown, unknown]> {
  const out: Record<string, [unknown, unknown]> = {};
  for (const [k, v] of Object.entries(after)) {
    const old = before ? before[k] : null;
    if (JSON.stringify(old ?? null) !== JSON.stringify(v ?? null)) out[k] = [old ?? null, v ?? null];
  }
  return out;
}
