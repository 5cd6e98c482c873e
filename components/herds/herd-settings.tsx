// The herd's settings: each member's drift against its parameter groups (accepted here, or put back by
// Apply settings), the settings its members run differently, and what changed between two times.
import Link from 'next/link';
import type { HerdSettingsView } from '@/lib/features/settings/herd-settings-view';

const when = (d: Date) => `${d.toISOString().replace('T', ' ').slice(0, 19)} UTC`;

export function HerdSettings({
  herdId,
  view,
  canApply,
  canAcceptIntoHerd,
  canAcceptIntoGroup,
  accept,
}: {
  herdId: number;
  view: HerdSettingsView;
  canApply: boolean;
  canAcceptIntoHerd: boolean;
  canAcceptIntoGroup: boolean;
  accept: (form: FormData) => Promise<void>;
}) {
  const drifted = view.members.filter((m) => m.drift.length);
  const governed = view.members.some((m) => m.groups);
  return (
    <section id="settings" data-testid="herd-settings">
      <h2>Settings</h2>
      {!governed ? (
        <p>
          No parameter group says what this herd should run: <Link href="/admin/parameter-groups">assign one</Link> to it or its
          environment.
        </p>
      ) : (
        <p>
          {view.members.map((m) => `${m.label}: ${m.groups || 'no group'}`).join('; ')}.{' '}
          {drifted.length === 0 ? 'Every member runs what its groups say.' : `${drifted.length} member(s) drifted.`}{' '}
          {canApply && (drifted.length > 0 || view.members.some((m) => m.drift.length)) && (
            <Link className="button" data-testid="apply-settings" href={`/operations/new?action=apply-settings&ids=${String(herdId)}`}>
              Apply settings
            </Link>
          )}
        </p>
      )}
      {drifted.length > 0 && (
        <table className="result-list" data-testid="settings-drift">
          <thead>
            <tr>
              <th scope="col">Member</th>
              <th scope="col">Setting</th>
              <th scope="col">Runs</th>
              <th scope="col">From</th>
              <th scope="col">Since</th>
              <th scope="col">Groups say</th>
              <th scope="col">Why</th>
              <th scope="col">Accept</th>
            </tr>
          </thead>
          <tbody>
            {drifted.flatMap((m) =>
              m.drift.map((d) => (
                <tr key={`${m.id}/${d.name}`} data-member={m.label} data-setting={d.name}>
                  <td>{m.label}</td>
                  <td>{d.name}</td>
                  <td data-col="runs">{d.runningShown ?? 'not set'}</td>
                  <td className="help">{d.source ?? ''}</td>
                  <td data-col="since">
                    {d.changedAt ? when(d.changedAt) : 'before its first reading'}
                    {d.changedAt && !d.operationId && <span className="help"> (outside pgherd)</span>}
                    {d.operationId && (
                      <>
                        {' '}
                        <Link prefetch={false} href={`/operations/${d.operationId}`}>
                          by #{d.operationId}
                        </Link>
                      </>
                    )}
                  </td>
                  <td data-col="wanted">
                    {d.written} <span className="help">({d.from})</span>
                  </td>
                  <td>{d.why ?? (d.kind === 'differs' ? 'changed outside its groups' : d.kind)}</td>
                  <td>
                    {d.kind === 'differs' && (canAcceptIntoGroup || canAcceptIntoHerd) ? (
                      <form action={accept} style={{ display: 'inline' }}>
                        <input type="hidden" name="herdId" value={herdId} />
                        <input type="hidden" name="instanceId" value={m.id} />
                        <input type="hidden" name="name" value={d.name} />
                        {canAcceptIntoGroup && d.from !== 'herd override' && (
                          <button
                            type="submit"
                            name="into"
                            value="source"
                            data-testid="accept-into-group"
                            title={
                              /\{[^{}]*\}/.test(d.written)
                                ? `Replaces the formula ${d.written} with ${d.runningShown ?? ''} for every host of the group`
                                : undefined
                            }
                          >
                            {/\{[^{}]*\}/.test(d.written) ? 'Into the group (replaces its formula)' : 'Into the group'}
                          </button>
                        )}{' '}
                        {canAcceptIntoHerd && (
                          <button type="submit" name="into" value="herd" data-testid="accept-into-herd">
                            Into the herd&apos;s overrides
                          </button>
                        )}
                      </form>
                    ) : null}
                  </td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      )}
      {view.differing.length > 0 && (
        <>
          <h3>Run differently by its members</h3>
          <table className="result-list" data-testid="settings-differing">
            <thead>
              <tr>
                <th scope="col">Setting</th>
                {view.differing[0]?.values.map((v) => (
                  <th scope="col" key={v.label}>
                    {v.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {view.differing.map((d) => (
                <tr key={d.name} data-setting={d.name}>
                  <td>{d.name}</td>
                  {d.values.map((v) => (
                    <td key={v.label}>{v.value}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h3 id="settings-history">
        Changed from {when(view.from)} to {when(view.to)}
      </h3>
      {view.changes.length === 0 ? (
        <p>Nothing changed.</p>
      ) : (
        <ul className="settings-history" data-testid="settings-history">
          {view.changes.map((c) => (
            <li key={`${c.instanceId}/${c.at.getTime()}`}>
              {when(c.at)} {c.label || `instance #${c.instanceId}`}:{' '}
              {Object.entries(c.changes)
                .map(([n, v]) => `${n} ${v.from ?? 'unset'} -> ${v.to ?? 'unset'}`)
                .join(', ')}{' '}
              {c.operationId ? (
                <Link prefetch={false} href={`/operations/${c.operationId}`}>
                  by operation #{c.operationId}
                </Link>
              ) : (
                <span className="help">outside pgherd</span>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
