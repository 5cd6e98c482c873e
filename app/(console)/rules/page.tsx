import Link from 'next/link';
import { asc } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { rules } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { formatValue } from '@/lib/features/admin/format';
import { requireAccess } from '@/lib/features/auth/session';
import { fireTimeText } from '@/lib/features/rules/cron';
import { mayRead, ruleView, scheduleOf } from '@/lib/features/rules/rules';
import { scheduleWords, scopeWords, zoneOf } from '@/lib/features/rules/words';
import { bulkRulesAction } from './actions';
import { ResultTable } from '@/components/tables/result-table';

export const dynamic = 'force-dynamic';

/** Every rule you may read: what it runs, on what, when next, how its last run went. */
export default async function RulesPage() {
  const access = await requireAccess();
  const db = getDb();
  const rows = (await db.select().from(rules).orderBy(asc(rules.name))).filter((r) => mayRead(access, r));
  const now = new Date();
  const views = await Promise.all(rows.map(async (r) => ({ r, v: await ruleView(db, r, now), s: scheduleOf(r) })));
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules' }]} />
      <h1>Rules</h1>
      <p>
        <Link href="/rules/new" className="button">
          New rule
        </Link>{' '}
        <Link href="/rules/upcoming">What fires in the next 24 hours</Link> · <Link href="/rules/blackouts">Blackout calendar</Link> ·{' '}
        <Link href="/rules/windows">Maintenance windows</Link> · <Link href="/rules/webhooks">Webhooks</Link>
      </p>
      <form action={bulkRulesAction}>
        <div className="actions">
          <label>
            Action:{' '}
            <select name="verb" defaultValue="run" aria-label="Bulk action">
              <option value="run">Run now</option>
              <option value="enable">Enable</option>
              <option value="disable">Disable</option>
            </select>
          </label>{' '}
          <button type="submit" className="button">
            Go
          </button>
        </div>
        <ResultTable
          testId="rules"
          rows={views}
          rowKey={({ r }) => r.id}
          rowData={({ r }) => ({ rule: r.name })}
          empty="No rules yet."
          columns={[
            { header: '', cell: ({ r }) => <input type="checkbox" name="ids" value={r.id} aria-label={`Select ${r.name}`} /> },
            { header: 'Name', cell: ({ r }) => <Link href={`/rules/${String(r.id)}`}>{r.name}</Link> },
            { header: 'Action', cell: ({ r }) => r.action },
            { header: 'Runs on', cell: ({ r }) => scopeWords(r.scope) },
            { header: 'Schedule', cell: ({ s }) => scheduleWords(s) },
            { header: 'Next fire', cell: ({ v, s }) => (v.nextFires[0] ? fireTimeText(new Date(v.nextFires[0]), zoneOf(s)) : '—') },
            {
              header: 'Last run',
              cell: ({ v }) => (v.lastRun ? `${v.lastRun.status}, ${formatValue('datetime', v.lastRun.at)}` : 'never'),
            },
            { header: 'Enabled', cell: ({ r }) => (r.enabled ? 'yes' : 'no') },
          ]}
        />
      </form>
    </>
  );
}
