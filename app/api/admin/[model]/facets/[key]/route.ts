import { NextResponse, type NextRequest } from 'next/server';
import { getDb } from '@/db/client';
import { changelistBase } from '@/lib/features/admin/changelist-view';
import { parseListParams, toQueryString } from '@/lib/features/admin/list-params';
import { facetOptions } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { getCurrentAccess } from '@/lib/features/auth/session';

/** GET ?term=...&<changelist query>: up to 20 options of a searchable facet, with counts under the other filters. */
export async function GET(req: NextRequest, ctx: { params: Promise<{ model: string; key: string }> }) {
  const access = await getCurrentAccess();
  if (!access) return NextResponse.json({ error: 'sign in required' }, { status: 401 });
  const { model, key } = await ctx.params;
  const def = getAdmin(model);
  const filter = def?.listFilter.find((f) => f.key === key);
  if (!def || !filter) return NextResponse.json({ error: `no filter ${key} on ${model}` }, { status: 404 });
  const raw = Object.fromEntries(req.nextUrl.searchParams.entries());
  const term = (raw.term ?? '').replaceAll('\u0000', '').trim().slice(0, 100);
  if (!term) return NextResponse.json({ error: 'term is required' }, { status: 400 });
  const p = parseListParams(def, raw, access);
  const options = await facetOptions(getDb(), def, filter, p, { search: term, limit: 20 });
  const base = changelistBase(def);
  return NextResponse.json({
    options: options.map((o) => ({ ...o, href: base + toQueryString(def, p, { filters: { ...p.filters, [key]: o.value }, page: 1 }) })),
  });
}
