import { NextResponse, type NextRequest } from 'next/server';
import { getDb } from '@/db/client';
import { MAX_BIG_ID, parseId } from '@/lib/adapters/validation/ids';
import { operationView } from '@/lib/engine/operation-view';
import { getCurrentAccess } from '@/lib/features/auth/session';
import { AccessDenied } from '@/lib/engine/access';
import { demandOnOperation } from '@/lib/features/operations/operation-control';

/** An ISO time from an earlier answer's cursor; anything else is a 400. */
function parseSince(raw: string | null): Date | null | 'bad' {
  if (raw === null) return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/.test(raw)) return 'bad';
  const d = new Date(raw);
  return Number.isNaN(d.getTime()) ? 'bad' : d;
}

/**
 * The operation page polls this while the operation runs: with `?since=<cursor>` (from the previous
 * answer) only the targets that changed are sent in full, with every target's id in order.
 */
export async function GET(req: NextRequest, ctx: { params: Promise<{ id: string }> }) {
  const access = await getCurrentAccess();
  if (!access) return NextResponse.json({ error: 'sign in required' }, { status: 401 });
  const id = parseId((await ctx.params).id, MAX_BIG_ID);
  const since = parseSince(req.nextUrl.searchParams.get('since'));
  if (since === 'bad') return NextResponse.json({ error: 'since: a cursor from an earlier answer' }, { status: 400 });
  const view = id === null ? null : since ? await operationView(getDb(), id, access, since) : await operationView(getDb(), id, access);
  if (!view) return NextResponse.json({ error: 'no such operation' }, { status: 404 });
  try {
    await demandOnOperation(getDb(), access, view.id, 'view');
  } catch (err) {
    if (err instanceof AccessDenied) return NextResponse.json({ error: err.message }, { status: 403 });
    throw err;
  }
  return NextResponse.json(view, { headers: { 'cache-control': 'no-store' } });
}
