'use client';
// The pending maintenance table: tick herds (those an upgrade can be planned for), then plan the
// rolling upgrade for the ticked ones on the confirmation page (nothing runs before it is confirmed).
import Link from 'next/link';
import { useState } from 'react';
import type { PendingHerd } from '@/lib/features/upgrades/pending';

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
      <table className="result-list" data-testid="pending-maintenance">
        <thead>
          <tr>
            <th scope="col" className="action-checkbox">
              <input
                type="checkbox"
                aria-label="Tick every herd that can be planned"
                checked={all}
                disabled={!plannable.length}
                onChange={() => setTicked(all ? new Set() : new Set(plannable.map((r) => r.herdId)))}
              />
            </th>
            <th scope="col">Herd</th>
            <th scope="col">Runs</th>
            <th scope="col">Target</th>
            <th scope="col">Behind</th>
            <th scope="col">What upgrading means</th>
            <th scope="col">In its way</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={7}>Every herd runs its target release.</td>
            </tr>
          )}
          {rows.map((r) => (
            <tr key={r.herdId} data-herd={r.herd} data-blocked={r.blocked === null ? 'no' : 'yes'}>
              <td className="action-checkbox">
                <input
                  type="checkbox"
                  aria-label={`Tick ${r.herd}`}
                  checked={ticked.has(r.herdId)}
                  disabled={r.blocked !== null || r.behind === 0}
                  onChange={() => toggle(r.herdId)}
                />
              </td>
              <td>
                <Link href={`/herds/${String(r.herdId)}`}>{r.herd}</Link>
              </td>
              <td>{r.runs.map((v) => `${v.version} \u00d7${String(v.members)}`).join(', ')}</td>
              <td title={r.targetFrom === 'configured' ? 'PGHERD_MINOR_TARGETS' : "the newest installed on every member's host"}>
                {r.target ?? '\u2014'}
                {r.targetFrom === 'configured' ? ' (configured)' : ''}
              </td>
              <td>
                {r.behind} of {r.members}
              </td>
              <td>{r.means}</td>
              <td>{r.blocked ?? '\u2014'}</td>
            </tr>
          ))}
        </tbody>
      </table>
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
