import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, jsonBody } from '@/lib/features/api/respond';
import { queryOf } from '@/lib/features/api/request-errors';
import { blackoutsQuery, createBlackoutRoute } from '@/lib/features/api/contract/rules';
import { createBlackout, listBlackouts } from '@/lib/features/rules/blackouts';

const view = (b: Awaited<ReturnType<typeof listBlackouts>>[number]) => ({
  id: b.id,
  name: b.name,
  reason: b.reason,
  startsAt: b.startsAt.toISOString(),
  endsAt: b.endsAt.toISOString(),
  timezone: b.timezone,
  environmentId: b.environmentId,
  herdId: b.herdId,
  createdBy: b.createdBy,
});

/** GET /api/v1/blackouts: those the caller may see (global ones, and their environments') not over yet, soonest first (`?past=1`: every one). */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  const q = queryOf(req, blackoutsQuery);
  return NextResponse.json({ items: (await listBlackouts(getDb(), user.access, q.past === '1')).map(view) });
});

/**
 * POST /api/v1/blackouts: { name, reason?, dates: { from, to }, timezone } (whole days in that zone)
 * or { name, startsAt, endsAt } (with offsets); environmentId or herdId, or neither for every rule.
 * A global admin sets a global one; an admin of its environment, the others.
 */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, createBlackoutRoute.body);
  const row = await createBlackout(getDb(), user, body);
  return NextResponse.json(view(row), { status: 201, headers: { location: `/api/v1/blackouts/${String(row.id)}` } });
});
