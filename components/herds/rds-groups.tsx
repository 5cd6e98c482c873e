// An RDS herd's DB parameter groups beside pgherd's groups (lib/features/settings/rds-groups-view.ts):
// which group each member uses and whether it runs what the group holds, what the group holds that
// pgherd's groups do not say, and what was set in it outside them.
import type { RdsGroupsView } from '@/lib/features/settings/rds-groups-view';
import { ResultTable } from '@/components/tables/result-table';

const APPLY_WORDS: Record<string, string> = {
  'in-sync': 'runs what the group holds',
  'pending-reboot': 'a value waits for its reboot',
  applying: 'RDS is applying a change',
};

export function RdsGroups({ view }: { view: RdsGroupsView }) {
  return (
    <section id="rds-parameter-groups" data-testid="rds-groups">
      <h3>RDS DB parameter groups</h3>
      {'error' in view ? (
        <p className="error" data-testid="rds-groups-error">
          {view.error}
        </p>
      ) : (
        view.groups.map((g) => (
          <div key={g.name} data-testid="rds-group" data-group={g.name}>
            <p>
              <strong>{g.name || 'no group'}</strong> ({view.region}):{' '}
              {g.members.map((m) => `${m.label} ${APPLY_WORDS[m.applyStatus] ?? m.applyStatus}`).join('; ')}.{' '}
              {g.drift.length === 0 ? 'It holds what pgherd’s groups say.' : `${g.drift.length} setting(s) differ from pgherd’s groups.`}
            </p>
            {g.drift.length > 0 && (
              <ResultTable
                testId="rds-group-drift"
                rows={g.drift}
                rowKey={(d) => d.name}
                rowData={(d) => ({ setting: d.name })}
                columns={[
                  { header: 'Setting', cell: (d) => d.name },
                  { header: 'The group holds', col: 'held', cell: (d) => d.inGroup ?? 'not set (RDS’s default)' },
                  { header: 'pgherd’s groups say', col: 'wanted', cell: (d) => d.wanted },
                  { header: 'From', cell: (d) => <span className="help">{d.from}</span> },
                ]}
              />
            )}
            {g.outside.length > 0 && (
              <p data-testid="rds-group-outside">
                Set in the group outside pgherd’s groups: {g.outside.map((o) => `${o.name} = ${o.value}`).join(', ')}.
              </p>
            )}
          </div>
        ))
      )}
    </section>
  );
}
