// The start of every /admin/<model>/<id>/... page: a signed-in user, a known model, a well-formed id,
// and the role the page needs in the object's environment (the 403 page, naming it, otherwise).
import { desc, and, eq } from 'drizzle-orm';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { auditEntries } from '@/db/schema';
import { demand, type Access } from '@/lib/engine/access';
import { orDeny, requireAccess, requireUser, type CurrentUser } from '@/lib/features/auth/session';
import { maxIdOf, permissionFor, writeScope, type EditableModel, type Permission } from './define-admin';
import { environmentOf } from './mutations';
import { parseId } from '@/lib/adapters/validation/ids';
import { getEditable } from './registry';

export interface ObjectRoute {
  user: CurrentUser;
  access: Access;
  def: EditableModel;
  id: number;
  /** The object's environment (for a deleted object: as its last audit entry recorded it). */
  environmentId: number | null;
}

export async function objectRoute(params: Promise<{ model: string; id: string }>, need: Permission): Promise<ObjectRoute> {
  const user = await requireUser();
  const access = await requireAccess();
  const { model, id: rawId } = await params;
  const def = getEditable(model);
  if (!def) notFound();
  const id = parseId(rawId, maxIdOf(def.id));
  if (id === null) notFound();
  const db = getDb();
  let environmentId = await environmentOf(db, def, id);
  if (environmentId === null && def.environmentSql) {
    // Gone (or outside any environment): the history page still needs to know whose it was.
    const [last] = await db
      .select({ env: auditEntries.environmentId })
      .from(auditEntries)
      .where(and(eq(auditEntries.objectType, def.name), eq(auditEntries.objectId, String(id))))
      .orderBy(desc(auditEntries.at))
      .limit(1);
    environmentId = last?.env ?? null;
  }
  const role = permissionFor(def, need);
  await orDeny(() =>
    demand(
      db,
      access,
      role,
      need === 'view' ? `This ${def.label}` : `${need === 'delete' ? 'Deleting' : 'Changing'} this ${def.label}`,
      need === 'view' ? [environmentId] : writeScope(def, environmentId),
    ),
  );
  return { user, access, def, id, environmentId };
}
