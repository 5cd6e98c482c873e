import { inArray } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { herds } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { BlackoutForm } from '@/components/rules/blackout-form';
import { visibleEnvironments } from '@/lib/engine/access';
import { requireAccess } from '@/lib/features/auth/session';
import { listBlackouts } from '@/lib/features/rules/blackouts';
import { createBlackoutAction, deleteBlackoutAction } from '../actions';

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
      <table className="result-list" data-testid="blackouts">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">From</th>
            <th scope="col">Until</th>
            <th scope="col">Applies to</th>
            <th scope="col">Reason</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {list.length === 0 && (
            <tr>
              <td colSpan={6}>No blackout ahead.</td>
            </tr>
          )}
          {list.map((b) => (
            <tr key={b.id} data-blackout={b.name}>
              <td>{b.name}</td>
              <td>{b.startsAt.toISOString().replace('T', ' ').slice(0, 16)} UTC</td>
              <td>{b.endsAt.toISOString().replace('T', ' ').slice(0, 16)} UTC</td>
              <td>
                {b.herdId !== null
                  ? `herd ${herdName.get(b.herdId) ?? `#${String(b.herdId)}`}`
                  : b.environmentId !== null
                    ? `environment ${envName.get(b.environmentId) ?? `#${String(b.environmentId)}`}`
                    : 'every rule'}
              </td>
              <td>{b.reason}</td>
              <td>
                <form action={deleteBlackoutAction}>
                  <input type="hidden" name="id" value={b.id} />
                  <button type="submit" className="button cancel-link">
                    Lift
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>New blackout</h2>
      <BlackoutForm
        create={createBlackoutAction}
        scopes={envs.map((e) => ({ value: `env:${String(e.id)}`, label: `environment ${e.name}` }))}
      />
    </>
  );
}
