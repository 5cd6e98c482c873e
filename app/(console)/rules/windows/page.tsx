import { inArray } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { herds } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { WindowForm } from '@/components/rules/window-form';
import { visibleEnvironments } from '@/lib/engine/access';
import { requireAccess } from '@/lib/features/auth/session';
import { listWindows } from '@/lib/features/rules/maintenance-windows';
import { windowAt, windowWords } from '@/lib/engine/windows';
import { ResultTable } from '@/components/tables/result-table';
import { IdButton } from '@/components/tables/id-button';
import { createWindowAction, deleteWindowAction } from '../actions';

export const dynamic = 'force-dynamic';

/** Maintenance windows: when rules marked "inside the window" may act on a herd. */
export default async function WindowsPage() {
  const access = await requireAccess();
  const db = getDb();
  const list = await listWindows(db, access);
  const envs = await visibleEnvironments(db, access);
  const envName = new Map(envs.map((e) => [e.id, e.name]));
  const herdIds = list.flatMap((w) => (w.herdId === null ? [] : [w.herdId]));
  const herdName = new Map(
    herdIds.length
      ? (await db.select({ id: herds.id, name: herds.name }).from(herds).where(inArray(herds.id, herdIds))).map((h) => [h.id, h.name])
      : [],
  );
  const now = new Date();
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: 'Maintenance windows' }]} />
      <h1>Maintenance windows</h1>
      <p className="help">
        A rule marked &ldquo;only inside the maintenance windows&rdquo; acts on a herd only while one of its windows (its own, its
        environment&apos;s, or one for every herd) is open; a rolling operation it started waits between waves until the next wave&apos;s
        herds are inside one, then goes on by itself.
      </p>
      <ResultTable
        testId="windows"
        rows={list}
        rowKey={(w) => w.id}
        rowData={(w) => ({ window: w.name })}
        empty="No maintenance window."
        columns={[
          { header: 'Name', cell: (w) => w.name },
          { header: 'When', cell: (w) => windowWords(w) },
          {
            header: 'Applies to',
            cell: (w) =>
              w.herdId !== null
                ? `herd ${herdName.get(w.herdId) ?? `#${String(w.herdId)}`}`
                : w.environmentId !== null
                  ? `environment ${envName.get(w.environmentId) ?? `#${String(w.environmentId)}`}`
                  : 'every herd',
          },
          { header: 'Now', cell: (w) => windowState(w, now) },
          {
            header: '',
            cell: (w) => (
              <IdButton action={deleteWindowAction} id={w.id} quiet>
                Remove
              </IdButton>
            ),
          },
        ]}
      />
      <h2>New window</h2>
      <WindowForm
        create={createWindowAction}
        scopes={envs.map((e) => ({ value: `env:${String(e.id)}`, label: `environment ${e.name}` }))}
      />
    </>
  );
}

/** Whether the window is open now and until when, or when it opens next; a window that cannot be read counts as closed. */
function windowState(w: Parameters<typeof windowAt>[0], now: Date): string {
  try {
    const at = windowAt(w, now);
    return at.open
      ? `open until ${at.until?.toISOString().replace('T', ' ').slice(0, 16) ?? '?'} UTC`
      : `closed; opens ${at.next.toISOString().replace('T', ' ').slice(0, 16)} UTC`;
  } catch (err) {
    return `cannot be read (${err instanceof Error ? err.message : String(err)}): counted as closed`;
  }
}
