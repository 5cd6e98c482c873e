// The REST API's one way of answering: JSON, and errors as { error, details } with the right status.
import { NextResponse, type NextRequest } from 'next/server';
import type { z } from 'zod';
import { getDb, isDatabaseUnavailable } from '@/db/client';
import '@/lib/adapters/validation/messages';
import { readCapped } from './body';
import { ApiError } from './request-errors';
import { routeFor } from './contract/routes';
import { AccessDenied, auditDenial, loadAccess, type Access } from '@/lib/engine/access';
import { SubmitError } from '@/lib/engine/submit-errors';
import { verifyApiToken, type Scope } from '@/lib/features/auth/api-tokens';
import { CLIENT_ADDRESS_HEADER, clientAddress } from '@/lib/features/auth/client-address';
import { getCurrentUser } from '@/lib/features/auth/session';
import { idMessage, MAX_ID, parseId } from '@/lib/adapters/validation/ids';
import { AwsNotConfiguredError } from '@/lib/adapters/aws/config';

/**
 * An id from the path: a 400 naming it when it is not a whole number from 1 to its table's largest id
 * (`max`: MAX_BIG_ID for an instance's or an operation's; docs/api.md, on ids).
 */
export function pathId(raw: string | undefined, field = 'id', max = MAX_ID): number {
  const id = parseId(raw ?? '', max);
  if (id === null) throw new ApiError(400, `invalid ${field}`, [{ path: field, message: idMessage(field, max) }]);
  return id;
}

export interface ApiUser {
  id: number;
  username: string;
  scope: Scope;
  remoteAddr: string;
  /** The user's roles: a token acts as its user, never beyond. */
  access: Access;
}

/**
 * A browser that sends the session cookie along with a request another site made (a form posted from
 * elsewhere) says so in Origin / Sec-Fetch-Site: writes with the cookie must come from pgherd's pages.
 */
export function sameOrigin(req: NextRequest): boolean {
  const origin = req.headers.get('origin');
  const host = req.headers.get('x-forwarded-host') ?? req.headers.get('host');
  if (origin) {
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  }
  const site = req.headers.get('sec-fetch-site');
  return site === 'same-origin' || site === 'none';
}

const MAX_BODY = 64 * 1024;

/** A bearer token, or else the console's session (a signed-in page calling the API). */
export async function apiUser(req: NextRequest, need: Scope): Promise<ApiUser> {
  const remoteAddr = clientAddress(req.headers.get(CLIENT_ADDRESS_HEADER));
  const auth = req.headers.get('authorization');
  let user: Omit<ApiUser, 'access'> | null = null;
  if (auth) {
    const token = /^Bearer (\S+)$/.exec(auth)?.[1];
    const t = token ? await verifyApiToken(getDb(), token) : null;
    if (!t) throw new ApiError(401, 'invalid, expired or revoked token');
    user = { ...t, remoteAddr };
  } else {
    const s = await getCurrentUser();
    if (s) {
      if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req))
        throw new ApiError(403, 'cross-site request refused: send a bearer token, or use the console');
      user = { id: s.id, username: s.username, scope: 'operate', remoteAddr };
    }
  }
  if (!user) throw new ApiError(401, 'authentication required: Authorization: Bearer <token>');
  if (need === 'operate' && user.scope !== 'operate')
    throw new ApiError(403, 'this token is read-only: a token with the operate scope is required');
  return { ...user, access: { ...(await loadAccess(getDb(), user.id)), remoteAddr } };
}

/** The body as text, read no further than MAX_BODY bytes: past it, a 413 (before anything is done). */
async function cappedText(req: NextRequest): Promise<string> {
  const len = Number(req.headers.get('content-length') ?? 0);
  if (len > MAX_BODY) throw new ApiError(413, `body larger than ${MAX_BODY} bytes`);
  const text = await readCapped(req, MAX_BODY);
  if (text === null) throw new ApiError(413, `body larger than ${MAX_BODY} bytes`);
  return text;
}

/**
 * For a route that takes no body: nothing, or `{}`, passes. Anything else is refused rather than
 * taken for obeyed (a 400 saying `why`), and read no further than the cap.
 */
export async function noBody(req: NextRequest, route: string, why: string): Promise<void> {
  const text = (await cappedText(req)).trim();
  if (text && text !== '{}') throw new ApiError(400, `${route} takes no body: ${why}`);
}

export async function jsonBody<T>(req: NextRequest, schema: z.ZodType<T>): Promise<T> {
  const text = await cappedText(req);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'the body is not valid JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    // One entry per field and message (2^53 fails both "whole number" and "at most": one line says it).
    const seen = new Set<string>();
    const details = parsed.error.issues
      .map((i) => ({ path: i.path.join('.'), message: i.message }))
      .filter((d) => !seen.has(`${d.path}\n${d.message}`) && !!seen.add(`${d.path}\n${d.message}`));
    throw new ApiError(400, 'invalid request', details);
  }
  return parsed.data;
}

type Handler = (req: NextRequest, ctx: { params: Promise<Record<string, string>> }) => Promise<NextResponse>;

export function handle(fn: Handler): Handler {
  return async (req, ctx) => {
    try {
      // A route that declares no query parameters refuses any (the contract says what each route takes).
      const keys = [...new Set(req.nextUrl.searchParams.keys())];
      if (keys.length) {
        const spec = routeFor(req.method, req.nextUrl.pathname);
        if (spec && !spec.query)
          throw new ApiError(
            400,
            `${req.method} ${spec.path} takes no query parameters`,
            keys.map((k) => ({ path: k, message: 'not a parameter of this route' })),
          );
      }
      return await fn(req, ctx);
    } catch (err) {
      const { inner, headers } = err instanceof AnswerHeaders ? err : { inner: err, headers: {} };
      const res = await errorAnswer(req, inner);
      for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
      return res;
    }
  };
}

/** An error a route meant to answer with headers of its own (a deprecated name's, say): handle() adds them to the error's answer. */
export class AnswerHeaders extends Error {
  constructor(
    readonly inner: unknown,
    readonly headers: Record<string, string>,
  ) {
    super(inner instanceof Error ? inner.message : String(inner));
  }
}

/** `fn`'s answer; an error it throws is answered (by handle) with `headers` too. */
export async function answeringWith(headers: Record<string, string>, fn: () => Promise<NextResponse>): Promise<NextResponse> {
  try {
    return await fn();
  } catch (err) {
    throw Object.keys(headers).length ? new AnswerHeaders(err, headers) : err;
  }
}

/** The answer to an error: its status and words, or a 500 that says nothing of it. */
async function errorAnswer(req: NextRequest, err: unknown): Promise<NextResponse> {
  if (err instanceof ApiError) return NextResponse.json({ error: err.message, details: err.details ?? null }, { status: err.status });
  if (err instanceof SubmitError) return NextResponse.json({ error: err.summary, details: err.details }, { status: err.status });
  // The API is where a refusal becomes the caller's answer: recorded here, once (the domain only throws).
  if (err instanceof AccessDenied) {
    await auditDenial(getDb(), err);
    return NextResponse.json({ error: err.message, details: null }, { status: 403 });
  }
  // A cloud feature asked for where AWS cannot be used (no region, no credentials): say why.
  if (err instanceof AwsNotConfiguredError)
    return NextResponse.json({ error: err.message, details: null }, { status: 503, headers: { 'retry-after': '60' } });
  if (isDatabaseUnavailable(err)) {
    console.error(JSON.stringify({ event: 'api.database_unavailable', path: req.nextUrl.pathname, message: (err as Error).message }));
    return NextResponse.json(
      { error: "pgherd's database is unavailable; nothing was changed. Try again shortly.", details: null },
      { status: 503, headers: { 'retry-after': '5' } },
    );
  }
  console.error(JSON.stringify({ event: 'api.error', path: req.nextUrl.pathname, message: (err as Error).message }));
  return NextResponse.json({ error: 'internal error', details: null }, { status: 500 });
}
