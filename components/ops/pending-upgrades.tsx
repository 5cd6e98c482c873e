'use client';
// The pending maintenance table: tick herds (those an upgrade can be planned for), then plan the
// rolling upgrade for the ticked ones on the confirmation page (nothing runs before it is confirmed).
import Link from 'next/link';
import { useState } from 'react';
import type { PendingHerd } from '@/lib/features/upgrades/pending';
import { ResultTable } from '@/components/tables/result-table';

export function PendingUpgrades({ rows }: { rows: PendingHerd[] }) {
  const plannable = rows.filter((r) => r.behind > 0 && r.blocked === null);
  const [ticked, setTicked] = useState<Set<number>>(() => new Set());
  const toggle = (id: number) =>
    setTicked((now) => {
      const next = new Set(now);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const all = plannable.length > 0 && plannable.every((r) => ticked.has(r.herdId));
  const ids = [...ticked].sort((a, b) => a - b);
  return (
    <>
      <ResultTable
        testId="pending-maintenance"
        rows={rows}
        rowKey={(r) => r.herdId}
        rowData={(r) => ({ herd: r.herd, blocked: r.blocked === null ? 'no' : 'yes' })}
        empty="Every herd runs its target release."
        columns={[
          {
            header: (
              <input
                type="checkbox"
                aria-label="Tick every herd that can be planned"
                checked={all}
                disabled={!plannable.length}
                onChange={() => setTicked(all ? new Set() : new Set(plannable.map((r) => r.herdId)))}
              />
            ),
            className: 'action-checkbox',
            cell: (r) => (
              <input
                type="checkbox"
                aria-label={`Tick ${r.herd}`}
                checked={ticked.has(r.herdId)}
                disabled={r.blocked !== null || r.behind === 0}
                onChange={() => toggle(r.herdId)}
              />
            ),
          },
          { header: 'Herd', cell: (r) => <Link href={`/herds/${String(r.herdId)}`}>{r.herd}</Link> },
          { header: 'Runs', cell: (r) => r.runs.map((v) => `${v.version} \u00d7${String(v.members)}`).join(', ') },
          {
            header: 'Target',
            title: (r) => (r.targetFrom === 'configured' ? 'PGHERD_MINOR_TARGETS' : "the newest installed on every member's host"),
            cell: (r) => `${r.target ?? '\u2014'}${r.targetFrom === 'configured' ? ' (configured)' : ''}`,
          },
          { header: 'Behind', cell: (r) => `${String(r.behind)} of ${String(r.members)}` },
          { header: 'What upgrading means', cell: (r) => r.means },
          { header: 'In its way', cell: (r) => r.blocked ?? '\u2014' },
        ]}
      />
      <p>
        {ids.length ? (
          <Link className="button" data-testid="plan-upgrade" href={`/operations/new?action=upgrade-minor&ids=${ids.join(',')}`}>
            Plan the rolling upgrade of {ids.length} herd{ids.length === 1 ? '' : 's'}
          </Link>
        ) : (
          <span className="help">Tick the herds to upgrade, then plan: the confirmation page says what will happen to each.</span>
        )}
      </p>
    </>
  );
}
