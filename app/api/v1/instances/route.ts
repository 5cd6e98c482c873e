import { NextResponse } from 'next/server';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { instanceRole, instanceState } from '@/db/schema';
import { ApiError, apiUser, handle } from '@/lib/api/respond';
import { parseListParams } from '@/lib/admin/list-params';
import { changeList } from '@/lib/admin/list-query';
import { getAdmin } from '@/lib/admin/registry';

const query = z.object({
  environment: z.coerce.number().int().positive().optional(),
  herd: z.coerce.number().int().positive().optional(),
  role: z.enum(instanceRole.enumValues).optional(),
  state: z.enum(instanceState.enumValues).optional(),
  site: z.string().max(200).optional(),
  version: z.coerce.number().int().min(9).max(99).optional(),
  q: z.string().max(200).optional(),
  sort: z.string().max(200).optional(),
  page: z.coerce.number().int().min(1).max(1_000_000).optional(),
  per: z.coerce.number().int().refine((n) => [10, 25, 50, 100, 200, 500].includes(n), 'one of 10, 25, 50, 100, 200, 500').optional(),
}).strict();

/** GET /api/v1/instances: the changelist's filters; unlike the pages, bad parameters are a 400. */
export const GET = handle(async (req) => {
  await apiUser(req, 'read');
  const parsed = query.safeParse(Object.fromEntries(req.nextUrl.searchParams.entries()));
  if (!parsed.success) throw new ApiError(400, 'invalid query', parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(query)', message: i.message })));
  const def = getAdmin('instances')!;
  const raw = Object.fromEntries(Object.entries(parsed.data).map(([k, v]) => [k, String(v)]));
  const p = parseListParams(def, raw);
  const list = await changeList(getDb(), def, p);
  return NextResponse.json({
    items: list.rows.map((r) => ({
      id: r.__id, environment: r.environment, herd: r.herd, herdId: r.herdId, server: r.server, address: r.address, site: r.site,
      port: r.port, role: r.role, state: r.state, version: r.version, upstream: r.upstream, timeline: r.timeline,
      lsn: r.lsn, lagBytes: r.lag, lagSeconds: r.lagSeconds, pendingRestart: r.pendingRestart, lastObservedAt: r.lastObservedAt,
    })),
    total: list.total,
    page: list.page,
    pages: list.pages,
  });
});
