import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { parseId } from '@/lib/admin/parse-id';
import { operationView } from '@/lib/ops/operation-view';
import { getCurrentUser } from '@/lib/auth/session';

/** The operation page polls this while the operation runs. */
export async function GET(_req: Request, ctx: { params: Promise<{ id: string }> }) {
  if (!(await getCurrentUser())) return NextResponse.json({ error: 'sign in required' }, { status: 401 });
  const id = parseId((await ctx.params).id);
  const view = id === null ? null : await operationView(getDb(), id);
  if (!view) return NextResponse.json({ error: 'no such operation' }, { status: 404 });
  return NextResponse.json(view, { headers: { 'cache-control': 'no-store' } });
}
