import { inArray } from 'drizzle-orm';
import { getDb } from '@/db/client';
import { herds } from '@/db/schema';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { WindowForm } from '@/components/rules/window-form';
import { visibleEnvironments } from '@/lib/engine/access';
import { requireAccess } from '@/lib/features/auth/session';
import { listWindows } from '@/lib/features/rules/maintenance-windows';
import { windowAt, windowWords } from '@/lib/engine/windows';
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
      <table className="result-list" data-testid="windows">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">When</th>
            <th scope="col">Applies to</th>
            <th scope="col">Now</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {list.length === 0 && (
            <tr>
              <td colSpan={5}>No maintenance window.</td>
            </tr>
          )}
          {list.map((w) => {
            let state: string;
            try {
              const at = windowAt(w, now);
              state = at.open
                ? `open until ${at.until?.toISOString().replace('T', ' ').slice(0, 16) ?? '?'} UTC`
                : `closed; opens ${at.next.toISOString().replace('T', ' ').slice(0, 16)} UTC`;
            } catch (err) {
              state = `cannot be read (${err instanceof Error ? err.message : String(err)}): counted as closed`;
            }
            return (
              <tr key={w.id} data-window={w.name}>
                <td>{w.name}</td>
                <td>{windowWords(w)}</td>
                <td>
                  {w.herdId !== null
                    ? `herd ${herdName.get(w.herdId) ?? `#${String(w.herdId)}`}`
                    : w.environmentId !== null
                      ? `environment ${envName.get(w.environmentId) ?? `#${String(w.environmentId)}`}`
                      : 'every herd'}
                </td>
                <td>{state}</td>
                <td>
                  <form action={deleteWindowAction}>
                    <input type="hidden" name="id" value={w.id} />
                    <button type="submit" className="button cancel-link">
                      Remove
                    </button>
                  </form>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>New window</h2>
      <WindowForm
        create={createWindowAction}
        scopes={envs.map((e) => ({ value: `env:${String(e.id)}`, label: `environment ${e.name}` }))}
      />
    </>
  );
}
