import { NextResponse } from 'next/server';
import { apiUser, handle } from '@/lib/features/api/respond';
import { listFromQuery } from '@/lib/features/api/list';
import { instancesQuery } from '@/lib/features/api/contract/inventory';

/** GET /api/v1/instances: the changelist's filters; unlike the pages, bad parameters are a 400. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const list = await listFromQuery(req, instancesQuery, 'instances', user.access);
  return NextResponse.json({
    items: list.rows.map((r) => ({
      id: r.__id,
      environment: r.environment,
      herd: r.herd,
      herdId: r.herdId,
      server: r.server,
      address: r.address,
      site: r.site,
      instanceType: r.instanceType || null,
      zone: r.zone || null,
      port: r.port,
      role: r.role,
      state: r.state,
      version: r.version,
      upstream: r.upstream,
      timeline: r.timeline,
      lsn: r.lsn,
      lagBytes: r.lag,
      lagSeconds: r.lagSeconds,
      pendingRestart: r.pendingRestart,
      lastObservedAt: r.lastObservedAt,
    })),
    total: list.total,
    page: list.page,
    pages: list.pages,
  });
});
