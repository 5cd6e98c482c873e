import { and, desc, eq, gt } from 'drizzle-orm';
import { NextResponse } from 'next/server';
import { getDb } from '@/db/client';
import { auditEntries } from '@/db/schema';
import { getCurrentUser } from '@/lib/features/auth/session';

/** GET: the signed-in user's latest refusal (the last minute), for the 403 page to say what was missing. */
export async function GET() {
  const user = await getCurrentUser();
  if (!user) return NextResponse.json({ error: 'sign in required' }, { status: 401 });
  const [last] = await getDb()
    .select({ changes: auditEntries.changes, at: auditEntries.at })
    .from(auditEntries)
    .where(
      and(eq(auditEntries.userId, user.id), eq(auditEntries.action, 'access.denied'), gt(auditEntries.at, new Date(Date.now() - 60_000))),
    )
    .orderBy(desc(auditEntries.at), desc(auditEntries.id))
    .limit(1);
  const reason = last?.changes.reason?.[1];
  return NextResponse.json({ message: typeof reason === 'string' ? reason : null }, { headers: { 'cache-control': 'no-store' } });
}
