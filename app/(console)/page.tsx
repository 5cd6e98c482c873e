import Link from 'next/link';
import { getDb } from '@/db/client';
import { FleetHealth } from '@/components/fleet/fleet-health';
import { fleetHealth } from '@/lib/features/agents/health';
import { dashboardData } from '@/lib/fleet/dashboard';
import { environmentsWith } from '@/lib/engine/access';
import { requireAccess } from '@/lib/features/auth/session';
import { liveWorkers, refreshIntervalsDisagree } from '@/lib/engine/workers-alive';
import { setting } from '@/lib/settings/settings';
import { fleetHistory } from '@/lib/fleet/lag-history';
import { FleetCharts } from '@/components/charts/fleet-charts';
import { AppIndex } from '@/components/admin/app-index';
import { appList } from '@/lib/features/admin/app-list';
import { breakGlassUses } from '@/lib/features/operations/approvals';
import { riskCounts } from '@/lib/features/risks/view';

export default async function Dashboard() {
  const access = await requireAccess();
  const scope = environmentsWith(access, 'viewer');
  const [d, health, workers, history, brokenGlass, risks] = await Promise.all([
    dashboardData(getDb(), scope),
    fleetHealth(getDb(), scope),
    liveWorkers(getDb()),
    fleetHistory(getDb(), scope),
    breakGlassUses(getDb(), scope),
    riskCounts(getDb(), scope),
  ]);
  const riskTotal = (severity: string) => risks.filter((r) => r.severity === severity).reduce((n, r) => n + r.count, 0);
  const intervals = refreshIntervalsDisagree(workers, setting('PGHERD_REFRESH_INTERVAL_MS'));
  return (
    <>
      <h1>Fleet</h1>
      <ul className="totals">
        <li>
          <Link href="/admin/environments">{d.totals.environments} environments</Link>
        </li>
        <li>
          <Link href="/admin/herds">{d.totals.herds} herds</Link>
        </li>
        <li>
          <Link href="/admin/servers">{d.totals.servers} servers</Link>
        </li>
        <li>
          <Link href="/admin/instances">{d.totals.instances} instances</Link>
        </li>
        <li data-testid="risk-totals">
          <Link href="/risks?severity=critical&counted=1">{riskTotal('critical')} critical risks</Link>,{' '}
          <Link href="/risks?severity=warning&counted=1">{riskTotal('warning')} warnings</Link>
        </li>
      </ul>
      {intervals && (
        <p className="errornote" data-testid="refresh-intervals">
          The refresh&rsquo;s intervals disagree: {intervals}.
        </p>
      )}
      {workers.length ? (
        <p className="muted" data-testid="workers">
          {workers.length} worker{workers.length === 1 ? '' : 's'} alive (
          {workers
            .map((w) => w.hostname)
            .filter((h, i, a) => a.indexOf(h) === i)
            .join(', ')}
          )
        </p>
      ) : (
        <p className="errornote" data-testid="workers">
          No worker is alive: operations will not run until one starts (<code>npm run worker</code>).
        </p>
      )}
      {brokenGlass.length > 0 && (
        <section className="module errornote" data-testid="break-glass-uses" aria-label="Break glass">
          <h2>Break glass in the last 30 days</h2>
          <ul>
            {brokenGlass.map((b) => (
              <li key={b.id}>
                <Link href={`/operations/${b.id}`}>
                  {b.action} #{b.id}
                </Link>{' '}
                by {b.by} at {b.at.replace('T', ' ').slice(0, 16)} UTC ({b.status}): “{b.reason}”
              </li>
            ))}
          </ul>
        </section>
      )}
      <AppIndex groups={appList(access)} />
      <FleetHealth health={health} scope="fleet" />
      <FleetCharts history={history} />
      <div className="dashboard">
        <section className="module">
          <h2>By environment</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Environment</th>
                <th scope="col">Herds</th>
                <th scope="col">Instances</th>
                <th scope="col">Primaries</th>
                <th scope="col">Replicas</th>
                <th scope="col">Not running</th>
              </tr>
            </thead>
            <tbody>
              {d.byEnvironment.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Link href={`/admin/instances?environment=${e.id}`}>{e.name}</Link>
                  </td>
                  <td className="num">
                    <Link href={`/admin/herds?environment=${e.id}`}>{e.herds}</Link>
                  </td>
                  <td className="num">{e.instances}</td>
                  <td className="num">
                    <Link href={`/admin/instances?environment=${e.id}&role=primary`}>{e.primaries}</Link>
                  </td>
                  <td className="num">
                    <Link href={`/admin/instances?environment=${e.id}&role=replica`}>{e.replicas}</Link>
                  </td>
                  <td className="num">
                    {e.notRunning > 0 ? (
                      <Link href={`/admin/instances?environment=${e.id}`} className="warn">
                        {e.notRunning}
                      </Link>
                    ) : (
                      0
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section className="module">
          <h2>By role</h2>
          <ul>
            {d.byRole.map((r) => (
              <li key={r.role}>
                <Link href={`/admin/instances?role=${r.role}`}>{r.role}</Link>: {r.n}
              </li>
            ))}
          </ul>
          <h2>By state</h2>
          <ul>
            {d.byState.map((s) => (
              <li key={s.state}>
                <Link href={`/admin/instances?state=${s.state}`}>
                  <span className={`badge badge-${s.state}`}>{s.state}</span>
                </Link>
                : {s.n}
              </li>
            ))}
          </ul>
        </section>
      </div>
    </>
  );
}
