import Link from 'next/link';
import { getDb } from '@/db/client';
import { rules } from '@/db/schema';
import { eq } from 'drizzle-orm';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
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
      <ResultTable
        testId="upcoming"
        rows={fires}
        rowKey={({ r, d }) => `${String(r.id)}-${String(d.getTime())}`}
        empty="Nothing is due."
        columns={[
          { header: 'When (UTC)', cell: ({ d }) => d.toISOString().replace('T', ' ').slice(0, 19) },
          { header: "In the rule's zone", cell: ({ d, tz }) => fireTimeText(d, tz) },
          { header: 'Rule', cell: ({ r }) => <Link href={`/rules/${String(r.id)}`}>{r.name}</Link> },
          { header: 'Action', cell: ({ r }) => r.action },
          { header: 'Runs on', cell: ({ r }) => scopeWords(r.scope) },
        ]}
      />
    </>
  );
}
