// Approve from chat: the approval.requested webhook carries an Approve and a Deny link, each signed
// (HMAC-SHA256 over the operation, its plan's digest, a random nonce that names no approver, the decision
// and an expiry) with a key pgherd keeps in its database. A link only opens the operation's page for a
// person signed in; it decides nothing by itself: that person clicks, as themselves, under the same
// rules as on the page (so a link forwarded to the wrong channel approves nothing). It works once: its
// nonce is recorded when a decision is made through it. A link tampered with, for another operation or
// digest, expired or used again is refused, and each refusal is audited.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import type { Requester } from '@/lib/engine/access';

const KEY_NAME = 'approval-links';

export interface LinkClaims {
  /** The operation. */
  o: number;
  /** Its plan's digest when the link was made. */
  d: string;
  /** A random nonce: the link's identity, the same for whoever holds it. */
  n: string;
  /** The decision it offers. */
  a: 'approved' | 'denied';
  /** Expiry, Unix seconds. */
  e: number;
}

let cached: string | null = null;

/** The signing key: made once (the first signer or checker to need it), then read. */
async function signingKey(db: Pick<Db, 'execute'>): Promise<string> {
  if (cached) return cached;
  await db.execute(
    sql`INSERT INTO signing_keys (name, key) VALUES (${KEY_NAME}, ${randomBytes(32).toString('hex')}) ON CONFLICT (name) DO NOTHING`,
  );
  const r = await db.execute<{ key: string }>(sql`SELECT key FROM signing_keys WHERE name = ${KEY_NAME}`);
  const key = r.rows[0]?.key;
  if (!key) throw new Error('the approval links\u2019 signing key is missing');
  cached = key;
  return key;
}

/** Forgets the key read (a test that replaced it). */
export const forgetSigningKey = () => {
  cached = null;
};

const mac = (key: string, body: string) => createHmac('sha256', key).update(body).digest('base64url');

/** A signed token for one decision on one operation, valid until `expiresAt`. */
export async function signLink(
  db: Pick<Db, 'execute'>,
  op: { id: number; digest: string },
  decision: 'approved' | 'denied',
  expiresAt: Date,
): Promise<string> {
  const claims: LinkClaims = {
    o: op.id,
    d: op.digest,
    n: randomBytes(16).toString('base64url'),
    a: decision,
    e: Math.floor(expiresAt.getTime() / 1000),
  };
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${body}.${mac(await signingKey(db), body)}`;
}

const claimsSchema = (v: unknown): v is LinkClaims => {
  const c = v as Partial<LinkClaims> | null;
  return (
    !!c &&
    typeof c === 'object' &&
    Number.isSafeInteger(c.o) &&
    (c.o ?? 0) > 0 &&
    typeof c.d === 'string' &&
    /^[0-9a-f]{32}$/.test(c.d) &&
    typeof c.n === 'string' &&
    /^[A-Za-z0-9_-]{16,64}$/.test(c.n) &&
    (c.a === 'approved' || c.a === 'denied') &&
    Number.isSafeInteger(c.e)
  );
};

export type LinkCheck = { ok: true; claims: LinkClaims } | { ok: false; why: string; operationId: number | null };

/**
 * What a token says, if pgherd signed it, for operation `expected` (the page it was opened on), for the
 * plan that operation waits with, unexpired and unused. Reads only; `useLink` spends it.
 */
export async function checkLink(db: Db, token: string, expected: number | null): Promise<LinkCheck> {
  const [body, given, ...rest] = token.split('.');
  if (!body || !given || rest.length || token.length > 600) return { ok: false, why: 'the link is malformed', operationId: null };
  const want = Buffer.from(mac(await signingKey(db), body));
  const got = Buffer.from(given);
  if (want.length !== got.length || !timingSafeEqual(want, got))
    return { ok: false, why: 'the link is not one pgherd signed (it was changed)', operationId: null };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, why: 'the link is malformed', operationId: null };
  }
  if (!claimsSchema(claims)) return { ok: false, why: 'the link is malformed', operationId: null };
  if (expected !== null && claims.o !== expected)
    return { ok: false, why: `the link is for operation #${claims.o}, not this one`, operationId: expected };
  if (claims.e * 1000 <= Date.now()) return { ok: false, why: 'the link has expired', operationId: claims.o };
  const [op] = await db.select({ digest: operations.planDigest }).from(operations).where(eq(operations.id, claims.o));
  if (!op) return { ok: false, why: 'the link names no operation', operationId: null };
  if (op.digest !== claims.d)
    return { ok: false, why: 'the link is for another plan than the one this operation waits with', operationId: claims.o };
  const used = await db.execute(sql`SELECT 1 FROM approval_link_uses WHERE nonce = ${claims.n}`);
  if (used.rows.length) return { ok: false, why: 'the link has been used already', operationId: claims.o };
  return { ok: true, claims };
}

/** Records a refused link, with who brought it. */
export async function auditLinkRefusal(db: Db, who: Requester, check: Extract<LinkCheck, { ok: false }>): Promise<void> {
  // Kept with the operation's environment: its own people read it in the audit log.
  const [op] =
    check.operationId === null
      ? []
      : await db.select({ envs: operations.environmentIds }).from(operations).where(eq(operations.id, check.operationId));
  await writeAudit(db, {
    environmentId: op?.envs?.length === 1 ? op.envs[0] : null,
    user: { id: who.id, username: who.username },
    remoteAddr: who.remoteAddr,
    action: 'approval.link_refused',
    objectType: 'operations',
    objectId: check.operationId === null ? '' : String(check.operationId),
    changes: { reason: [null, check.why] },
  });
}

/**
 * Spends a link inside the transaction that records the decision made with it: false when another use
 * got there first (the decision is then refused and rolled back with it).
 */
export async function spendLink(tx: Pick<Db, 'execute'>, claims: LinkClaims, username: string): Promise<boolean> {
  const r = await tx.execute(sql`
    INSERT INTO approval_link_uses (nonce, operation_id, used_by) VALUES (${claims.n}, ${claims.o}, ${username})
    ON CONFLICT (nonce) DO NOTHING RETURNING nonce`);
  return r.rows.length > 0;
}

/**
 * The console address of a link: /approval-link, which sends a signed-in person to the operation's page
 * with the token, and anyone else to sign in first and then there.
 */
export const linkUrl = (consoleUrl: string, token: string) => `${consoleUrl}/approval-link?t=${encodeURIComponent(token)}`;

/** The operation a token names, read without trusting it (the page it leads to checks it): only to know where to go. */
export function linkOperation(token: string): number | null {
  try {
    const c = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { o?: unknown };
    return Number.isSafeInteger(c.o) && (c.o as number) > 0 ? (c.o as number) : null;
  } catch {
    return null;
  }
}
