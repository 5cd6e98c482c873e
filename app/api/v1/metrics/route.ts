import { NextResponse } from 'next/server';
import { Registry } from 'prom-client';
import { getDb } from '@/db/client';
import { visibleEnvironments } from '@/lib/engine/access';
import { apiUser, handle } from '@/lib/features/api/respond';
import { registerFleetGauges } from '@/lib/features/metrics/fleet';

/** GET /api/v1/metrics: the environment-labelled gauges, the caller's environments only. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const db = getDb();
  const names = new Set((await visibleEnvironments(db, user.access)).map((e) => e.name));
  const registry = new Registry();
  registerFleetGauges(
    registry,
    () => db,
    () => [],
    { environments: names },
  );
  return new NextResponse(await registry.metrics(), {
    headers: { 'content-type': registry.contentType, 'cache-control': 'no-store' },
  });
});
