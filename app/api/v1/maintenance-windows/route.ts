import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, jsonBody } from '@/lib/features/api/respond';
import { createWindowRoute } from '@/lib/features/api/contract/rules';
import { createWindow, listWindows } from '@/lib/features/rules/maintenance-windows';
import { windowWords, type WindowRow } from '@/lib/engine/windows';

const view = (w: WindowRow) => ({
  id: w.id,
  name: w.name,
  days: w.days,
  starts: w.starts,
  durationMinutes: w.durationMinutes,
  timezone: w.timezone,
  environmentId: w.environmentId,
  herdId: w.herdId,
  words: windowWords(w),
  createdBy: w.createdBy,
});

/** GET /api/v1/maintenance-windows: the windows the caller may see (global ones, and their environments'), oldest first. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  return NextResponse.json({ items: (await listWindows(getDb(), user.access)).map(view) });
});

/**
 * POST /api/v1/maintenance-windows: { name, days: [0-6], starts: "HH:MM", durationMinutes, timezone,
 * environmentId? | herdId? } (neither: every herd). A global admin sets a global one; an admin of its
 * environment, the others.
 */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, createWindowRoute.body);
  const row = await createWindow(getDb(), user, body);
  return NextResponse.json(view(row), { status: 201, headers: { location: `/api/v1/maintenance-windows/${String(row.id)}` } });
});
