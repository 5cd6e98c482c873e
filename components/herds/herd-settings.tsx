// The herd's settings: each member's drift against its parameter groups (accepted here, or put back by
// Apply settings), the settings its members run differently, and what changed between two times.
import Link from 'next/link';
import type { HerdSettingsView } from '@/lib/features/settings/herd-settings-view';
import { ResultTable } from '@/components/tables/result-table';

type Drift = HerdSettingsView['members'][number]['drift'][number];

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
        <ResultTable
          testId="settings-drift"
          rows={drifted.flatMap((m) => m.drift.map((d) => ({ m, d })))}
          rowKey={({ m, d }) => `${m.id}/${d.name}`}
          rowData={({ m, d }) => ({ member: m.label, setting: d.name })}
          columns={[
            { header: 'Member', cell: ({ m }) => m.label },
            { header: 'Setting', cell: ({ d }) => d.name },
            { header: 'Runs', col: 'runs', cell: ({ d }) => d.runningShown ?? 'not set' },
            { header: 'From', cell: ({ d }) => <span className="help">{d.source ?? ''}</span> },
            { header: 'Since', col: 'since', cell: ({ d }) => <DriftSince d={d} /> },
            {
              header: 'Groups say',
              col: 'wanted',
              cell: ({ d }) => (
                <>
                  {d.written} <span className="help">({d.from})</span>
                </>
              ),
            },
            { header: 'Why', cell: ({ d }) => d.why ?? (d.kind === 'differs' ? 'changed outside its groups' : d.kind) },
            {
              header: 'Accept',
              cell: ({ m, d }) =>
                d.kind === 'differs' && (canAcceptIntoGroup || canAcceptIntoHerd) ? (
                  <AcceptDrift
                    accept={accept}
                    herdId={herdId}
                    instanceId={m.id}
                    d={d}
                    intoGroup={canAcceptIntoGroup}
                    intoHerd={canAcceptIntoHerd}
                  />
                ) : null,
            },
          ]}
        />
      )}
      {view.differing.length > 0 && (
        <>
          <h3>Run differently by its members</h3>
          <ResultTable
            testId="settings-differing"
            rows={view.differing}
            rowKey={(d) => d.name}
            rowData={(d) => ({ setting: d.name })}
            columns={[
              { header: 'Setting', cell: (d) => d.name },
              ...(view.differing[0]?.values ?? []).map((v, i) => ({
                header: v.label,
                cell: (d: (typeof view.differing)[number]) => d.values[i]?.value,
              })),
            ]}
          />
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

/** When a member's setting changed, and by which operation or outside pgherd. */
function DriftSince({ d }: { d: Drift }) {
  return (
    <>
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
    </>
  );
}

/** Accepting what a member runs: into the group that says otherwise, or into the herd's overrides. */
function AcceptDrift({
  accept,
  herdId,
  instanceId,
  d,
  intoGroup,
  intoHerd,
}: {
  accept: (form: FormData) => Promise<void>;
  herdId: number;
  instanceId: number;
  d: Drift;
  intoGroup: boolean;
  intoHerd: boolean;
}) {
  const formula = /\{[^{}]*\}/.test(d.written);
  return (
    <form action={accept} style={{ display: 'inline' }}>
      <input type="hidden" name="herdId" value={herdId} />
      <input type="hidden" name="instanceId" value={instanceId} />
      <input type="hidden" name="name" value={d.name} />
      {intoGroup && d.from !== 'herd override' && (
        <button
          type="submit"
          name="into"
          value="source"
          data-testid="accept-into-group"
          title={formula ? `Replaces the formula ${d.written} with ${d.runningShown ?? ''} for every host of the group` : undefined}
        >
          {formula ? 'Into the group (replaces its formula)' : 'Into the group'}
        </button>
      )}{' '}
      {intoHerd && (
        <button type="submit" name="into" value="herd" data-testid="accept-into-herd">
          Into the herd&apos;s overrides
        </button>
      )}
    </form>
  );
}
