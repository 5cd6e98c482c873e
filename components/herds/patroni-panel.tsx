// Patroni's view of a herd next to pgherd's, as `patronictl list` shows it: the DCS lock holder, each
// member's Patroni role, state, timeline, lag and pending restart, and whether the cluster is paused
// (no automatic failover while it is).
import Link from 'next/link';
import { formatBytes } from '@/lib/adapters/format/units';
import type { PatroniNow } from '@/lib/fleet/patroni-view';
import { ResultTable } from '@/components/tables/result-table';

export function PatroniPanel({ patroni }: { patroni: PatroniNow }) {
  return (
    <section data-testid="patroni">
      <h2>Patroni</h2>
      {patroni.askedOf === null ? (
        <p className="errornote" role="alert">
          No member&apos;s Patroni answered: {patroni.problems.join('; ')}
        </p>
      ) : (
        <>
          <p>
            Leader (the DCS lock): <strong data-col="leader">{patroni.leader ?? 'nobody holds it'}</strong>
            {patroni.paused && (
              <>
                {' '}
                <strong className="warn" data-col="paused">
                  paused: Patroni will not fail over on its own
                </strong>
              </>
            )}
            {patroni.scheduledSwitchover && (
              <>
                {' '}
                · switchover scheduled at {patroni.scheduledSwitchover.at}
                {patroni.scheduledSwitchover.to ? ` to ${patroni.scheduledSwitchover.to}` : ''}
              </>
            )}{' '}
            <span className="help">(asked of {patroni.askedOf})</span>
          </p>
          <ResultTable
            testId="patroni-members"
            rows={patroni.members}
            rowKey={(m) => m.name}
            rowData={(m) => ({ 'patroni-member': m.name })}
            columns={[
              { header: 'Patroni member', cell: (m) => m.name },
              {
                header: 'pgherd instance',
                cell: (m) =>
                  m.instanceId === null ? (
                    <span className="warn">{m.label} (not in pgherd&apos;s inventory)</span>
                  ) : (
                    <Link prefetch={false} href={`/admin/instances/${m.instanceId}`}>
                      {m.label}
                    </Link>
                  ),
              },
              { header: 'Role', col: 'role', cell: (m) => m.role },
              { header: 'State', col: 'state', cell: (m) => m.state },
              { header: 'TL', cell: (m) => m.timeline ?? '' },
              { header: 'Lag', cell: (m) => (m.lag === null ? '' : m.lag === 'unknown' ? 'unknown' : formatBytes(m.lag)) },
              { header: 'Pending restart', cell: (m) => (m.pendingRestart ? 'yes' : '') },
            ]}
          />
          {patroni.unknownToPatroni.length > 0 && (
            <p className="warn">Not in Patroni&apos;s cluster: {patroni.unknownToPatroni.map((u) => u.label).join(', ')}.</p>
          )}
          {patroni.problems.length > 0 && <p className="help">Did not answer: {patroni.problems.join('; ')}</p>}
        </>
      )}
    </section>
  );
}
