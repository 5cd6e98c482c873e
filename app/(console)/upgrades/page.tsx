import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { EnvironmentTabs } from '@/components/fleet/environment-tabs';
import { PendingUpgrades } from '@/components/ops/pending-upgrades';
import { requireAccess } from '@/lib/features/auth/session';
import { chooseEnvironment } from '@/lib/features/auth/environment-choice';
import { pendingMaintenance } from '@/lib/features/upgrades/pending';

export const dynamic = 'force-dynamic';

/**
 * Pending maintenance: per environment the user may see, the herds whose members run an older minor
 * release than their major's target, what upgrading them means, and a plan for the ticked ones.
 */
export default async function PendingMaintenancePage({ searchParams }: { searchParams: Promise<{ environment?: string }> }) {
  const access = await requireAccess();
  const db = getDb();
  const choice = await chooseEnvironment(db, access, (await searchParams).environment);
  const env = choice.chosen;
  const rows = env ? await pendingMaintenance(db, [env.id]) : [];
  return (
    <>
      <Breadcrumbs items={[{ label: 'Pending maintenance' }]} />
      <h1>Pending maintenance{env ? `: ${env.name}` : ''}</h1>
      <EnvironmentTabs choice={choice} href={(id) => `/upgrades?environment=${String(id)}`} />
      <p className="help">
        A herd is listed when a member runs an older minor release than its major&apos;s target: the release PGHERD_MINOR_TARGETS names,
        else the newest one installed on every member&apos;s host (as the agents report the builds). The rolling upgrade moves the replicas
        one at a time, switches over, then moves the old primary; a member that fails its gate goes back to the build it ran.
      </p>
      <PendingUpgrades rows={rows} />
    </>
  );
}
