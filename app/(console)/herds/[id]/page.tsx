import Link from 'next/link';
import { notFound } from 'next/navigation';
import { getDb } from '@/db/client';
import { Breadcrumbs } from '@/components/admin/breadcrumbs';
import { AutoRefresh } from '@/components/ops/auto-refresh';
import { formatBytes } from '@/lib/adapters/format/units';
import { parseId } from '@/lib/adapters/validation/ids';
import { orDeny, requireAccess } from '@/lib/features/auth/session';
import { can, demand, environmentsWith } from '@/lib/engine/access';
import { diagramOf, herdNow, type MemberNow } from '@/lib/fleet/herds/topology';
import { TopologyDiagram } from '@/components/herds/topology-diagram';
import { FleetHealth } from '@/components/fleet/fleet-health';
import { fleetHealth } from '@/lib/features/agents/health';
import { PatroniPanel } from '@/components/herds/patroni-panel';
import { LagChart } from '@/components/charts/lag-chart';
import { PatroniProposals } from '@/components/herds/patroni-proposals';
import { patroniProposals } from '@/lib/features/agents/patroni-proposal';
import { acceptDriftAction, acceptObjectsAction, acceptPatroniProposalAction } from './actions';
import { HerdObjects } from '@/components/herds/herd-objects';
import { herdObjectsView } from '@/lib/features/objects/herd-objects-view';
import { HerdSettings } from '@/components/herds/herd-settings';
import { herdSettingsView } from '@/lib/features/settings/herd-settings-view';
import { recentRdsGroupsView } from '@/lib/features/settings/rds-groups-view';
import { RdsGroups } from '@/components/herds/rds-groups';

/** A time from the URL (?changesFrom=2026-11-25T02:00:00Z); anything else: the default. */
function timeParam(v: string | string[] | undefined): Date | undefined {
  if (typeof v !== 'string' || v.length > 40) return undefined;
  const t = new Date(v);
  return Number.isNaN(t.getTime()) ? undefined : t;
}
import { OwedList } from '@/components/ops/owed-list';
import { owedNow } from '@/lib/engine/owed';
import { ResultTable } from '@/components/tables/result-table';

export const dynamic = 'force-dynamic';

/** The herd as it is now: members observed live, DNS names asked at their server, recent operations. */
export default async function HerdPage({
  params,
  searchParams,
}: {
  params: Promise<{ id: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const access = await requireAccess();
  const id = parseId((await params).id);
  const q = await searchParams;
  const now = id === null ? null : await herdNow(getDb(), id);
  if (!now) notFound();
  await orDeny(() => demand(getDb(), access, 'viewer', 'This herd', [now.herd.environmentId]));
  const { herd, members, dns, poolers, operations, patroni } = now;
  const health = await fleetHealth(getDb(), environmentsWith(access, 'viewer'), { herdId: herd.id });
  const primaries = members.filter((m) => m.role === 'primary');
  const proposals = await patroniProposals(getDb(), herd.id);
  const owed = await owedNow(getDb(), { herdIds: [herd.id] });
  const settings = await herdSettingsView(getDb(), herd.id, { from: timeParam(q.changesFrom), to: timeParam(q.changesTo) });
  const objects = await herdObjectsView(getDb(), herd.id);
  const rdsGroups = await recentRdsGroupsView(getDb(), herd.id);
  // A member on an earlier timeline than the one primary cannot follow it as it is (a switchover refuses it).
  const primaryTimeline = primaries.length === 1 ? (primaries[0]?.observed.timeline ?? null) : null;
  return (
    <>
      <AutoRefresh seconds={5} />
      <Breadcrumbs items={[{ label: 'Herds', href: '/admin/herds' }, { label: herd.label }]} />
      <div className="content-head">
        <h1>Herd {herd.label}</h1>
        {can(access, 'operator', herd.environmentId) && (
          <Link className="button" href={`/admin/herds/${herd.id}`}>
            Change the herd
          </Link>
        )}
        {can(access, 'admin', herd.environmentId) && (
          <Link className="button" data-testid="add-replica" href={`/operations/new?action=add-replica&ids=${String(herd.id)}`}>
            Add replica
          </Link>
        )}
      </div>
      {primaries.length > 1 && (
        <p className="errornote" role="alert">
          {primaries.length} members answer as primaries: {primaries.map((p) => p.ref.label).join(', ')}.
        </p>
      )}
      {primaries.length === 0 && (
        <p className="errornote" role="alert">
          No member answers as a primary.
        </p>
      )}
      <OwedList owed={owed} linkOperations />
      <PatroniProposals
        herdId={herd.id}
        proposals={proposals}
        canAccept={can(access, 'admin', herd.environmentId)}
        accept={acceptPatroniProposalAction}
      />
      <FleetHealth health={health} scope="herd" />
      <div className="diagram-box">
        <TopologyDiagram input={diagramOf(now)} title={`${herd.label} now`} />
      </div>
      <ResultTable
        className="topology"
        testId="members"
        rows={members}
        rowKey={(m) => m.ref.id}
        rowData={(m) => ({ member: m.ref.hostname })}
        columns={[
          {
            header: 'Member',
            cell: (m) => (
              <Link prefetch={false} href={`/admin/instances/${m.ref.id}`}>
                {m.ref.label}
              </Link>
            ),
          },
          { header: 'Site', cell: (m) => m.ref.site },
          { header: 'Role', col: 'role', cell: (m) => m.role ?? 'unknown' },
          {
            header: 'State',
            col: 'state',
            cell: (m) => (
              <>
                {m.state}
                {!m.observed.reachable && m.observed.error ? <span className="help"> ({m.observed.error})</span> : null}
              </>
            ),
          },
          { header: 'TL', col: 'timeline', cell: (m) => <MemberTimeline m={m} primaryTimeline={primaryTimeline} /> },
          { header: 'Received LSN', cell: (m) => m.observed.receiveLsn ?? '' },
          { header: 'Replayed LSN', cell: (m) => m.observed.lsn ?? '' },
          { header: 'Lag', col: 'lag', cell: (m) => (m.lagBytes === null ? '' : formatBytes(m.lagBytes)) },
          { header: 'Lag (s)', cell: (m) => (m.observed.replayLagSeconds == null ? '' : m.observed.replayLagSeconds.toFixed(1)) },
          {
            header: 'Upstream',
            col: 'upstream',
            cell: (m) => m.upstream?.label ?? (m.upstreamEndpoint ? `${m.upstreamEndpoint} (not in the herd)` : ''),
          },
          { header: 'Pending restart', cell: (m) => (m.observed.pendingRestart ? 'yes' : '') },
        ]}
      />

      <HerdSettings
        herdId={herd.id}
        view={settings}
        canApply={can(access, 'admin', herd.environmentId)}
        canAcceptIntoHerd={can(access, 'admin', herd.environmentId)}
        canAcceptIntoGroup={can(access, 'admin', null)}
        accept={acceptDriftAction}
      />
      {rdsGroups && <RdsGroups view={rdsGroups} />}

      <HerdObjects herdId={herd.id} view={objects} canApply={can(access, 'admin', herd.environmentId)} accept={acceptObjectsAction} />

      <LagChart url={`/api/v1/herds/${herd.id}/lag`} />

      {patroni && <PatroniPanel patroni={patroni} />}

      <h2>DNS</h2>
      {dns.length === 0 ? (
        <p>No DNS records follow this herd.</p>
      ) : (
        <ResultTable
          testId="dns"
          rows={dns}
          rowKey={(d) => d.record.id}
          rowData={(d) => ({ dns: d.record.name })}
          columns={[
            {
              header: 'Name',
              cell: (d) => (
                <>
                  {d.record.name}{' '}
                  <span className="help">
                    {d.record.type}, TTL {d.record.ttl} s
                  </span>
                </>
              ),
            },
            {
              header: 'Follows',
              cell: (d) =>
                d.record.match === 'instance' ? `instance ${d.record.matchInstanceId ?? 'none'}` : `the ${d.record.matchRole ?? 'primary'}`,
            },
            { header: 'Answers now', col: 'answers', cell: (d) => (d.answers ? d.answers.join(', ') || 'nothing' : d.error) },
            { header: 'Should answer', cell: (d) => (Array.isArray(d.expected) ? d.expected.join(', ') : d.expected) },
            { header: 'OK', col: 'ok', cell: (d) => (d.ok ? 'yes' : <strong className="warn">no</strong>) },
          ]}
        />
      )}

      {poolers.length > 0 && (
        <>
          <h2>PgBouncer</h2>
          <ul className="poolers" data-testid="poolers">
            {poolers.map((p) => (
              <li key={p.label}>
                <strong>{p.label}</strong> <span className="help">{p.configFile}</span>: {p.now}
              </li>
            ))}
          </ul>
        </>
      )}

      <h2>Recent operations</h2>
      {operations.length === 0 ? (
        <p>None yet.</p>
      ) : (
        <ul className="recent-operations">
          {operations.map((o) => (
            <li key={o.id}>
              <Link prefetch={false} href={`/operations/${o.id}`}>
                #{o.id} {o.action}
              </Link>{' '}
              by {o.requestedBy}, {o.createdAt.toISOString().replace('T', ' ').slice(0, 19)} UTC: {o.status}
              {o.reason && <span className="help"> ({o.reason})</span>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/** A member's timeline, and the way out when it is behind the primary's. */
function MemberTimeline({ m, primaryTimeline }: { m: MemberNow; primaryTimeline: number | null }) {
  const behind =
    primaryTimeline !== null && m.observed.reachable && m.observed.timeline !== undefined && m.observed.timeline < primaryTimeline;
  return (
    <>
      {m.observed.timeline ?? ''}
      {behind ? <span className="help"> (earlier than the primary&apos;s {primaryTimeline}: Remaster it, or Rebuild it)</span> : null}
    </>
  );
}
