import Link from 'next/link';
import type { Collected, CollectedGroup } from '@/lib/features/admin/collect';

function Group({ g }: { g: CollectedGroup }) {
  return (
    <li>
      <strong>{g.label}</strong>: {g.ids.length}
      <ul>
        {g.items.map((it) => (
          <li key={it.id}>{!g.linkable ? it.label : <Link href={`/admin/${g.model}/${it.id}`}>{it.label}</Link>}</li>
        ))}
        {g.ids.length > g.items.length && <li className="muted">and {g.ids.length - g.items.length} more</li>}
      </ul>
    </li>
  );
}

/** Django's delete_selected page: everything that goes, everything that loses a reference, then one button. */
export function DeleteConfirmation({
  model,
  label,
  ids,
  collected,
  cancelHref,
  action,
}: {
  model: string;
  label: string;
  ids: number[];
  collected: Collected;
  cancelHref: string;
  action: (form: FormData) => Promise<void>;
}) {
  const [root] = collected.deleted;
  if (!root) throw new Error('collectForDelete lists the objects themselves first');
  const blocked = collected.protectedBy.length > 0;
  return (
    <div className="delete-confirmation">
      {blocked ? (
        <>
          <p className="errornote">Deleting these {label} would require deleting objects that are protected:</p>
          <ul>
            {collected.protectedBy.map((g) => (
              <Group key={g.model} g={g} />
            ))}
          </ul>
        </>
      ) : (
        <>
          <p>
            Are you sure you want to delete{' '}
            {root.ids.length === 1 ? `the ${label} “${root.items[0]?.label ?? `#${root.ids[0] ?? ''}`}”` : `${root.ids.length} ${label}`}?
            All of the following objects and their related items will be deleted:
          </p>
          <h2>Summary</h2>
          <ul className="delete-summary">
            {collected.deleted.map((g) => (
              <li key={g.model}>
                {g.label}: {g.ids.length}
              </li>
            ))}
          </ul>
          <h2>Objects</h2>
          <ul className="deleted-objects">
            {collected.deleted.map((g) => (
              <Group key={g.model} g={g} />
            ))}
          </ul>
          {collected.unlinked.length > 0 && (
            <>
              <h2>These keep existing but lose their reference</h2>
              <ul className="unlinked-objects">
                {collected.unlinked.map((g) => (
                  <Group key={g.model} g={g} />
                ))}
              </ul>
            </>
          )}
          <form action={action}>
            <input type="hidden" name="model" value={model} />
            <input type="hidden" name="ids" value={ids.join(',')} />
            <button type="submit" className="button danger">
              Yes, I’m sure
            </button>{' '}
            <Link className="button cancel-link" href={cancelHref}>
              No, take me back
            </Link>
          </form>
        </>
      )}
    </div>
  );
}
