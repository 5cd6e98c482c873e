// The herd's fleet objects: each difference between what it declares and what its primary has, what would
// change it (the statement Apply fleet objects runs, or why it cannot), and Accept where what runs can be
// kept as the herd's own line.
import Link from 'next/link';
import type { HerdObjectsView } from '@/lib/features/objects/herd-objects-view';
import { ResultTable } from '@/components/tables/result-table';

const when = (d: Date) => `${d.toISOString().replace('T', ' ').slice(0, 19)} UTC`;

const remedy = (c: HerdObjectsView['changes'][number]) =>
  c.what === 'cannot'
    ? `cannot: ${c.why ?? ''}`
    : c.kind === 'hba'
      ? `Apply writes pg_hba (${c.why ?? ''})`
      : `${c.drop ? 'Apply with "drop what is not declared": ' : 'Apply: '}${c.sql.map((s) => (s.database === 'postgres' ? s.text : `in ${s.database}: ${s.text}`)).join('; ')}`;

export function HerdObjects({
  herdId,
  view,
  canApply,
  accept,
}: {
  herdId: number;
  view: HerdObjectsView;
  canApply: boolean;
  accept: (form: FormData) => Promise<void>;
}) {
  return (
    <section id="objects" data-testid="herd-objects">
      <h2>Fleet objects</h2>
      {!view.declared ? (
        <p>
          Nothing declares the roles, databases and access rules this herd should have:{' '}
          <Link href="/admin/object-sets">give it an object set</Link> or its environment one.
        </p>
      ) : (
        <p>
          Declared by {view.from}; its primary read {view.readAt ? when(view.readAt) : 'not yet'}.{' '}
          {view.changes.length + view.errors.length === 0
            ? 'It has what it declares.'
            : `${view.changes.length + view.errors.length} difference(s).`}{' '}
          {canApply && view.changes.some((c) => c.what !== 'cannot') && (
            <Link className="button" data-testid="apply-objects" href={`/operations/new?action=apply-objects&ids=${String(herdId)}`}>
              Apply fleet objects
            </Link>
          )}
        </p>
      )}
      {view.errors.length > 0 && (
        <ul className="error" data-testid="objects-errors">
          {view.errors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      )}
      {view.changes.length > 0 && (
        <ResultTable
          testId="objects-drift"
          rows={view.changes}
          rowKey={(c) => c.name}
          rowData={(c) => ({ object: c.name, what: c.what })}
          columns={[
            { header: 'Object', cell: (c) => c.name },
            { header: 'Drift', col: 'what', cell: (c) => c.what },
            { header: 'Primary has', cell: (c) => c.runs },
            {
              header: 'Declared',
              cell: (c) =>
                c.from ? (
                  <>
                    {c.declared} <span className="help">({c.from})</span>
                  </>
                ) : (
                  c.declared
                ),
            },
            { header: 'What would change it', cell: (c) => <span className="help">{remedy(c)}</span> },
            {
              header: 'Accept',
              cell: (c) =>
                c.acceptable && canApply ? (
                  <form action={accept} style={{ display: 'inline' }}>
                    <input type="hidden" name="herdId" value={herdId} />
                    <input type="hidden" name="name" value={c.name} />
                    <button type="submit" title="Keep what the primary has, as a line of this herd's own object overrides">
                      Into the herd
                    </button>
                  </form>
                ) : null,
            },
          ]}
        />
      )}
    </section>
  );
}
