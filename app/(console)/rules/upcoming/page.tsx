import Link from 'next/link';
import { getDb } from '@/db/client';
import { rules } from '@/db/schema';
import { eq } from 'drizzle-orm';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { requireAccess } from '@/lib/features/auth/session';
import { fireTimeText, nextFires } from '@/lib/features/rules/cron';
import { mayRead, scheduleOf } from '@/lib/features/rules/rules';
import { scopeWords, zoneOf } from '@/lib/features/rules/words';

export const dynamic = 'force-dynamic';

/** Every fire due in the next 24 hours, across the rules you may read, soonest first (at most 500 listed). */
export default async function UpcomingPage() {
  const access = await requireAccess();
  const now = new Date();
  const until = now.getTime() + 86_400_000;
  const rows = (await getDb().select().from(rules).where(eq(rules.enabled, true))).filter((r) => mayRead(access, r));
  const fires = rows
    .flatMap((r) => {
      const s = scheduleOf(r);
      return (s ? nextFires(s, now, 50) : []).filter((d) => d.getTime() <= until).map((d) => ({ r, d, tz: zoneOf(s) }));
    })
    .sort((a, b) => a.d.getTime() - b.d.getTime())
    .slice(0, 500);
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: 'Next 24 hours' }]} />
      <h1>What fires in the next 24 hours</h1>
      <table className="result-list" data-testid="upcoming">
        <thead>
          <tr>
            <th scope="col">When (UTC)</th>
            <th scope="col">In the rule&apos;s zone</th>
            <th scope="col">Rule</th>
            <th scope="col">Action</th>
            <th scope="col">Runs on</th>
          </tr>
        </thead>
        <tbody>
          {fires.length === 0 && (
            <tr>
              <td colSpan={5}>Nothing is due.</td>
            </tr>
          )}
          {fires.map(({ r, d, tz }) => (
            <tr key={`${String(r.id)}-${String(d.getTime())}`}>
              <td>{d.toISOString().replace('T', ' ').slice(0, 19)}</td>
              <td>{fireTimeText(d, tz)}</td>
              <td>
                <Link href={`/rules/${String(r.id)}`}>{r.name}</Link>
              </td>
              <td>{r.action}</td>
              <td>{scopeWords(r.scope)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
