import { inArray } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { herds } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { ResultTable } from '@/components/tables/result-table';
import { BlackoutForm } from '@/components/rules/blackout-form';
import { visibleEnvironments } from '@/lib/engine/access';
import { requireAccess } from '@/lib/features/auth/session';
import { listBlackouts } from '@/lib/features/rules/blackouts';
import { createBlackoutAction, deleteBlackoutAction } from '../actions';
import { IdButton } from '@/components/tables/id-button';

export const dynamic = 'force-dynamic';

/** The blackout calendar: when rules do not fire (all of them, or an environment's or a herd's targets). */
export default async function BlackoutsPage() {
  const access = await requireAccess();
  const db = getDb();
  const list = await listBlackouts(db, access);
  const envs = await visibleEnvironments(db, access);
  const envName = new Map(envs.map((e) => [e.id, e.name]));
  // Herds are many: the form offers environments; a herd's blackout is set through the API (herdId).
  const herdIds = list.filter((b) => b.herdId !== null).map((b) => b.herdId as number);
  const herdName = new Map(
    herdIds.length
      ? (await db.select({ id: herds.id, name: herds.name }).from(herds).where(inArray(herds.id, herdIds))).map((h) => [h.id, h.name])
      : [],
  );
  return (
    <>
      <Breadcrumbs items={[{ label: 'Rules', href: '/rules' }, { label: 'Blackout calendar' }]} />
      <h1>Blackout calendar</h1>
      <ResultTable
        testId="blackouts"
        rows={list}
        rowKey={(b) => b.id}
        rowData={(b) => ({ blackout: b.name })}
        empty="No blackout ahead."
        columns={[
          { header: 'Name', cell: (b) => b.name },
          { header: 'From', cell: (b) => `${b.startsAt.toISOString().replace('T', ' ').slice(0, 16)} UTC` },
          { header: 'Until', cell: (b) => `${b.endsAt.toISOString().replace('T', ' ').slice(0, 16)} UTC` },
          {
            header: 'Applies to',
            cell: (b) =>
              b.herdId !== null
                ? `herd ${herdName.get(b.herdId) ?? `#${String(b.herdId)}`}`
                : b.environmentId !== null
                  ? `environment ${envName.get(b.environmentId) ?? `#${String(b.environmentId)}`}`
                  : 'every rule',
          },
          { header: 'Reason', cell: (b) => b.reason },
          {
            header: '',
            cell: (b) => (
              <IdButton action={deleteBlackoutAction} id={b.id} quiet>
                Lift
              </IdButton>
            ),
          },
        ]}
      />
      <h2>New blackout</h2>
      <BlackoutForm
        create={createBlackoutAction}
        scopes={envs.map((e) => ({ value: `env:${String(e.id)}`, label: `environment ${e.name}` }))}
      />
    </>
  );
}
