import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { apiUser, handle, jsonBody } from '@/lib/features/api/respond';
import { ApiError } from '@/lib/features/api/request-errors';
import { createWebhookRoute } from '@/lib/features/api/contract/rules';
import { createWebhook, manageableWebhooks, webhookView } from '@/lib/features/rules/webhooks';

/** GET /api/v1/webhooks: the webhooks you may manage (a global admin: all), never their secrets. */
export const GET = handle(async (req) => {
  const user = await apiUser(req, 'read');
  if ([...req.nextUrl.searchParams.keys()].length) throw new ApiError(400, 'GET /api/v1/webhooks takes no query parameters');
  return NextResponse.json({ items: (await manageableWebhooks(getDb(), user)).map(webhookView) });
});

/**
 * POST /api/v1/webhooks: { name, url, ruleId?, events?, enabled? }. 201 with the webhook and its
 * `secret`, shown this once: receivers check X-Pgherd-Signature with it (docs/rules.md, "Webhooks").
 */
export const POST = handle(async (req) => {
  const user = await apiUser(req, 'operate');
  const body = await jsonBody(req, createWebhookRoute.body);
  const row = await createWebhook(getDb(), user, body);
  return NextResponse.json(
    { ...webhookView(row), secret: row.secret },
    { status: 201, headers: { location: `/api/v1/webhooks/${String(row.id)}` } },
  );
});
