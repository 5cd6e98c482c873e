import type { Db } from '@/db/client';
import { auditEntries } from '@/db/schema';

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

type Tx = Pick<Db, 'insert'>;

/** Audit rows are only ever inserted; nothing in pgherd updates or deletes them. */
export async function writeAudit(db: Tx, e: AuditInput | AuditInput[]): Promise<void> {
  const list = Array.isArray(e) ? e : [e];
  // Postgres takes at most 65,535 parameters a statement: an operation on 10,000 targets writes its
  // entries in several inserts (in the caller's transaction, so still all or none).
  for (let i = 0; i < list.length; i += AUDIT_ROWS_A_STATEMENT) await insertEntries(db, list.slice(i, i + AUDIT_ROWS_A_STATEMENT));
}

const AUDIT_ROWS_A_STATEMENT = 2000;

async function insertEntries(db: Tx, list: AuditInput[]): Promise<void> {
  await db.insert(auditEntries).values(
    list.map((x) => ({
      userId: x.user.id,
      username: x.user.username,
      remoteAddr: x.remoteAddr ?? '',
      action: x.action,
      objectType: x.objectType,
      objectId: x.objectId ?? '',
      objectLabel: (x.objectLabel ?? '').slice(0, 500),
      environmentId: x.environmentId ?? null,
      changes: x.changes ?? {},
    })),
  );
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
