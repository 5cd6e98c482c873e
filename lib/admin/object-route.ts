// The start of every /admin/<model>/<id>/... page: a signed-in user, a known model, a well-formed id.
import { notFound } from 'next/navigation';
import { requireUser, type CurrentUser } from '@/lib/auth/session';
import type { AdminDef } from './define-admin';
import { parseId } from './parse-id';
import { getAdmin } from './registry';

export async function objectRoute(params: Promise<{ model: string; id: string }>): Promise<{ user: CurrentUser; def: AdminDef; id: number }> {
  const user = await requireUser();
  const { model, id: rawId } = await params;
  const def = getAdmin(model);
  const id = parseId(rawId);
  if (!def || id === null || def.readOnly) notFound();
  return { user, def, id };
}
