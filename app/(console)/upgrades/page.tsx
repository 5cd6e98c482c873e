import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { EnvironmentTabs } from '@/components/fleet/environment-tabs';
import { PendingUpgrades } from '@/components/ops/pending-upgrades';
import { requireAccess } from '@/lib/features/auth/session';
import { chooseEnvironment } from '@/lib/features/auth/environment-choice';
import { pendingMaintenance } from '@/lib/features/upgrades/pending';
import { upgradeCampaign } from '@/lib/features/upgrades/campaign';
import { ResultTable } from '@/components/tables/result-table';

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
  const campaign = env ? await upgradeCampaign(db, env.id) : { majors: [], upgrades: [] };
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
      <h2>Campaign</h2>
      <p className="help">
        The majors the herds run and the days left before each one&apos;s end of life (the project&apos;s last minor release). A major
        upgrade is a blue/green one: Pre-check a major upgrade, then Upgrade to a new major on the herds changelist; its cut-over is
        confirmed on its own.
      </p>
      <ResultTable
        testId="upgrade-campaign"
        rows={campaign.majors}
        rowKey={(m) => m.major}
        rowData={(m) => ({ major: m.major })}
        rowClass={(m) => (m.daysLeft !== null && m.daysLeft < 365 ? 'warning' : undefined)}
        columns={[
          { header: 'Major', cell: (m) => m.major },
          { header: 'Herds', cell: (m) => m.herds },
          { header: 'End of life', cell: (m) => m.endOfLife ?? '\u2014' },
          {
            header: 'Days left',
            cell: (m) => (m.daysLeft === null ? '\u2014' : m.daysLeft < 0 ? `ended ${String(-m.daysLeft)} days ago` : m.daysLeft),
          },
        ]}
      />
      <ResultTable
        testId="upgrades-under-way"
        rows={campaign.upgrades}
        rowKey={(u) => u.id}
        rowData={(u) => ({ status: u.status })}
        empty="No major upgrade under way."
        columns={[
          { header: 'Upgrade', cell: (u) => `#${String(u.id)}` },
          { header: 'Blue', cell: (u) => u.blue ?? '\u2014' },
          { header: 'Green', cell: (u) => u.green ?? '\u2014' },
          { header: 'To', cell: (u) => u.toVersion },
          {
            header: 'Where it stands',
            cell: (u) =>
              u.status === 'building'
                ? 'green being built and copied'
                : u.status === 'ready'
                  ? 'green current: cut over when ready'
                  : 'cut over: blue stays current (roll back, or clean up)',
          },
        ]}
      />
    </>
  );
}
