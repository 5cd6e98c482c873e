// The REST API's one way of answering: JSON, and errors as { error, details } with the right status.
import { NextResponse, type NextRequest } from 'next/server';
import type { z } from 'zod';
import { getDb } from '@/db/client';
import { verifyApiToken, type Scope } from '@/lib/auth/api-tokens';
import { clientAddress } from '@/lib/auth/client-address';
import { getCurrentUser } from '@/lib/auth/session';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly details?: unknown) {
    super(message);
  }
}

export interface ApiUser {
  id: number;
  username: string;
  scope: Scope;
  remoteAddr: string;
}

const MAX_BODY = 64 * 1024;

/** A bearer token, or else the console's session (a signed-in page calling the API). */
export async function apiUser(req: NextRequest, need: Scope): Promise<ApiUser> {
  const remoteAddr = clientAddress(req.headers.get('x-forwarded-for'));
  const auth = req.headers.get('authorization');
  let user: ApiUser | null = null;
  if (auth) {
    const m = /^Bearer (\S+)$/.exec(auth);
    const t = m ? await verifyApiToken(getDb(), m[1]) : null;
    if (!t) throw new ApiError(401, 'invalid, expired or revoked token');
    user = { ...t, remoteAddr };
  } else {
    const s = await getCurrentUser();
    if (s) user = { id: s.id, username: s.username, scope: 'operate', remoteAddr };
  }
  if (!user) throw new ApiError(401, 'authentication required: Authorization: Bearer <token>');
  if (need === 'operate' && user.scope !== 'operate') throw new ApiError(403, 'this token is read-only: a token with the operate scope is required');
  return user;
}

export async function jsonBody<T>(req: NextRequest, schema: z.ZodType<T>): Promise<T> {
  const len = Number(req.headers.get('content-length') ?? 0);
  if (len > MAX_BODY) throw new ApiError(413, `body larger than ${MAX_BODY} bytes`);
  const text = await req.text();
  if (text.length > MAX_BODY) throw new ApiError(413, `body larger than ${MAX_BODY} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'the body is not valid JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, 'invalid request', parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  return parsed.data;
}

type Handler = (req: NextRequest, ctx: { params: Promise<Record<string, string>> }) => Promise<NextResponse>;

export function handle(fn: Handler): Handler {
  return async (req, ctx) => {
    try {
      return await fn(req, ctx);
    } catch (err) {
      if (err instanceof ApiError) return NextResponse.json({ error: err.message, details: err.details ?? null }, { status: err.status });
      console.error(JSON.stringify({ event: 'api.error', path: req.nextUrl.pathname, message: (err as Error).message }));
      return NextResponse.json({ error: 'internal error', details: null }, { status: 500 });
    }
  };
}
