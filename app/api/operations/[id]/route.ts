import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { parseId } from '@/lib/validation/ids';
import { operationView } from '@/lib/ops/operation-view';
import { getCurrentAccess } from '@/lib/auth/session';
import { AccessDenied } from '@/lib/auth/access';
import { demandOnOperation } from '@/lib/ops/control';

/** The operation page polls this while the operation runs. */
export async function GET(_req: Request, ctx: { params: Promise<{ id: string }> }) {
  const access = await getCurrentAccess();
  if (!access) return NextResponse.json({ error: 'sign in required' }, { status: 401 });
  const id = parseId((await ctx.params).id);
  const view = id === null ? null : await operationView(getDb(), id, access);
  if (!view) return NextResponse.json({ error: 'no such operation' }, { status: 404 });
  try {
    await demandOnOperation(getDb(), access, view.id, 'view');
  } catch (err) {
    if (err instanceof AccessDenied) return NextResponse.json({ error: err.message }, { status: 403 });
    throw err;
  }
  return NextResponse.json(view, { headers: { 'cache-control': 'no-store' } });
}
