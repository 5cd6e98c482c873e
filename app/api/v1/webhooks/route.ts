import { NextResponse } from 'next/server';
import { asc } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { rules, webhooks } from '@/db/schema';
import { ApiError, apiUser, handle, jsonBody } from '@/lib/api/respond';
import { mayManage } from '@/lib/schedules/rules';
import { createWebhook, webhookBody, webhookView } from '@/lib/schedules/webhooks';

/** GET /api/v1/webhooks: the webhooks you may manage (a global admin: all), never their secrets. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  if ([...req.nextUrl.searchParams.keys()].length) throw new ApiError(400, 'GET /api/v1/webhooks takes no query parameters');
  const db = getDb();
  const owners = new Map((await db.select({ id: rules.id, ownerId: rules.ownerId }).from(rules)).map((r) => [r.id, r]));
  const all = await db.select().from(webhooks).orderBy(asc(webhooks.id));
  const admin = user.access.superuser || user.access.global === 'admin';
  const mine = all.filter((w) => admin || (w.ruleId !== null && mayManage(user, owners.get(w.ruleId) ?? { ownerId: null })));
  return NextResponse.json({ items: mine.map(webhookView) });
});

/**
 * POST /api/v1/webhooks: { name, url, ruleId?, events?, enabled? }. 201 with the webhook and its
 * `secret`, shown this once: receivers check X-Pgherd-Signature with it (README, "Webhooks").
 */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, webhookBody);
  const row = await createWebhook(getDb(), user, body);
  return NextResponse.json(
    { ...webhookView(row), secret: row.secret },
    { status: 201, headers: { location: `/api/v1/webhooks/${String(row.id)}` } },
  );
});
