'use client';

import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type RowSelectionState } from '@tanstack/react-table';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useEffect, useMemo, useState } from 'react';
import type { ActionView, ColumnView, PackedRows, RowView } from '@/lib/features/admin/types';
import { unpackRows } from '@/lib/features/admin/packed-rows';
import { useLinkClicks } from '@/components/client-nav';

interface Props {
  /** Where objects' own pages are: rows link to <base>/<id>. */
  base: string;
  columns: ColumnView[];
  rows: PackedRows;
  total: number;
  labelPlural: string;
  actions: ActionView[];
  /** The list's query string (filters, search, sort) without the leading '?'. */
  query: string;
}

/**
 * Rows drawn into the page's HTML: a screenful (a 1080-pixel screen shows 25 to 30 under the page's
 * head). The page's data carries every row; the rest are drawn as the table starts in the browser, so
 * a page of 100 is not sent twice over (HTML and data) for rows below the fold. Until then the table
 * says aria-busy.
 */
const FIRST_PAINT_ROWS = 25;

export function ChangeListTable({ base, columns, rows: packed, total, labelPlural, actions, query }: Props) {
  const rows = useMemo(() => unpackRows(packed), [packed]);
  // The server and the browser's first render draw the same rows (hydration compares them), then all.
  const [started, setStarted] = useState(false);
  useEffect(() => {
    setStarted(true);
  }, []);
  const drawn = started ? rows.length : Math.min(rows.length, FIRST_PAINT_ROWS);
  const router = useRouter();
  const linkClicks = useLinkClicks();
  const [selection, setSelection] = useState<RowSelectionState>({});
  const [allMatching, setAllMatching] = useState(false);
  const [action, setAction] = useState(actions[0]?.name ?? '');
  const [error, setError] = useState('');

  const defs = useMemo<ColumnDef<RowView>[]>(
    () => [
      // No action this user may use: no checkboxes at all.
      ...(actions.length
        ? [
            {
              id: '__select',
              header: ({ table }) => (
                <input
                  type="checkbox"
                  aria-label="Select all on this page"
                  checked={table.getIsAllRowsSelected()}
                  onChange={(e) => {
                    table.toggleAllRowsSelected(e.target.checked);
                    if (!e.target.checked) setAllMatching(false);
                  }}
                />
              ),
            } satisfies ColumnDef<RowView>,
          ]
        : []),
      // Header cells only: the body's cells are drawn straight from the rows (below), 1,500 of them a
      // page, without a cell object and a context each.
      ...columns.map<ColumnDef<RowView>>((c) => ({
        id: c.key,
        header: () => (
          <span className="th-inner">
            {c.sortHref ? (
              <Link href={c.sortHref} prefetch={false}>
                {c.label}
              </Link>
            ) : (
              c.label
            )}
            {c.sortDir && (
              <span className="sort-state" title={`sorted ${c.sortDir}ending, priority ${c.sortPriority ?? 1}`}>
                {c.sortDir === 'asc' ? ' \u25b2' : ' \u25bc'}
                {c.sortPriority}
                {c.removeSortHref && (
                  <Link className="sort-remove" href={c.removeSortHref} prefetch={false} aria-label={`Stop sorting by ${c.label}`}>
                    {'\u00d7'}
                  </Link>
                )}
              </span>
            )}
          </span>
        ),
      })),
    ],
    [columns, actions.length],
  );

  // eslint-disable-next-line react-hooks/incompatible-library -- pgherd does not use the React Compiler, whose memoization this warns about
  const table = useReactTable({
    data: rows,
    columns: defs,
    state: { rowSelection: selection },
    getRowId: (r) => String(r.id),
    onRowSelectionChange: setSelection,
    enableRowSelection: (r) => !r.original.locked,
    getCoreRowModel: getCoreRowModel(),
  });

  const selectedIds = Object.keys(selection).filter((k) => selection[k]);
  const selectable = rows.filter((r) => !r.locked).length;
  const pageAllSelected = selectable > 0 && selectedIds.length === selectable;
  const count = allMatching ? total : selectedIds.length;

  function run(e: React.SubmitEvent<HTMLFormElement>) {
    e.preventDefault();
    const a = actions.find((x) => x.name === action);
    if (!a) {
      setError('Choose an action.');
      return;
    }
    if (!count) {
      setError('Items must be selected in order to perform actions on them. No items have been changed.');
      return;
    }
    const qs = allMatching ? `all=1${query ? `&${query}` : ''}` : `ids=${selectedIds.join(',')}`;
    router.push(`${a.href}${a.href.includes('?') ? '&' : '?'}${qs}`);
  }

  return (
    <form className="changelist-form" onSubmit={run}>
      {actions.length > 0 && (
        <div className="actions">
          <label>
            Action:{' '}
            <select name="action" value={action} onChange={(e) => setAction(e.target.value)}>
              {actions.map((a) => (
                <option key={a.name} value={a.name}>
                  {a.label}
                </option>
              ))}
            </select>
          </label>{' '}
          <button type="submit" className="button">
            Go
          </button>{' '}
          <span className="action-counter" data-testid="selection-count">
            {count} of {total} selected
          </span>
          {pageAllSelected && total > selectable && !allMatching && (
            <button type="button" className="link-button" onClick={() => setAllMatching(true)}>
              Select all {total} {labelPlural}
            </button>
          )}
          {allMatching && (
            <>
              {' '}
              <strong>
                All {total} {labelPlural} matching are selected.
              </strong>{' '}
              <button
                type="button"
                className="link-button"
                onClick={() => {
                  setAllMatching(false);
                  setSelection({});
                }}
              >
                Clear selection
              </button>
            </>
          )}
          {error && (
            <p className="errornote" role="alert">
              {error}
            </p>
          )}
        </div>
      )}
      {/* Numbers right-aligned by column, said once rather than by a class on each of a page's cells. */}
      {numericCss(columns, actions.length > 0) && <style>{numericCss(columns, actions.length > 0)}</style>}
      {/* A box of its own: a list wider than the page scrolls sideways here, its scrollbar in view and its header kept. */}
      <div className="results-box" data-testid="results-box">
        <table className="result-list" onClick={linkClicks} aria-busy={drawn < rows.length || undefined}>
          <thead>
            {table.getHeaderGroups().map((hg) => (
              <tr key={hg.id}>
                {hg.headers.map((h) => (
                  <th key={h.id} scope="col" className={h.column.id === '__select' ? 'action-checkbox' : undefined}>
                    {flexRender(h.column.columnDef.header, h.getContext())}
                  </th>
                ))}
              </tr>
            ))}
          </thead>
          <tbody>
            {table
              .getRowModel()
              .rows.slice(0, drawn)
              .map((r) => (
                <tr key={r.id} className={r.getIsSelected() ? 'selected' : undefined}>
                  {actions.length > 0 && (
                    <td>
                      {!r.original.locked && (
                        <input
                          type="checkbox"
                          aria-label={`Select ${r.original.values[0] ?? r.original.id}`}
                          checked={r.getIsSelected()}
                          onChange={(e) => {
                            r.toggleSelected(e.target.checked);
                            if (!e.target.checked) setAllMatching(false);
                          }}
                        />
                      )}
                    </td>
                  )}
                  {columns.map((c, i) => (
                    <td
                      key={c.key}
                      // A long value (an audit entry's changes) is cut at the column's width: all of it on hover, and on its page.
                      title={(r.original.values[i]?.length ?? 0) > LONG_CELL ? r.original.values[i] : undefined}
                    >
                      {(r.original.values[i]?.length ?? 0) > SHORT_CELL ? (
                        <span className="cell">{cell(c, r.original, i, base)}</span>
                      ) : (
                        cell(c, r.original, i, base)
                      )}
                    </td>
                  ))}
                </tr>
              ))}
          </tbody>
        </table>
      </div>
    </form>
  );
}

/** The rule that right-aligns the numeric columns' cells (nth-child counts the checkbox column). */
function numericCss(columns: ColumnView[], checkboxes: boolean): string {
  const at = columns.flatMap((c, i) => (c.numeric ? [`.changelist-form .result-list td:nth-child(${i + 1 + (checkboxes ? 1 : 0)})`] : []));
  return at.length ? `${at.join(',')}{text-align:right;font-variant-numeric:tabular-nums}` : '';
}

/** Characters past which a cell's text may be cut at the column's width (its title has all of it). */
const LONG_CELL = 60;
/**
 * Characters that always fit the column's widest (36em, .cell in globals.css): a shorter text is drawn
 * without the box that cuts it, most of a page's cells, and the page is lighter by that box each.
 */
const SHORT_CELL = 30;

/** One body cell: its text, as a link (plain: the table routes their clicks) or a badge where the column says. */
function cell(c: ColumnView, row: RowView, at: number, base: string): React.ReactNode {
  const text = row.values[at];
  if (c.link === 'self') return <a href={`${base}/${row.id}`}>{text}</a>;
  const linked = row.links?.[at];
  if (c.link && linked !== undefined) return <a href={`/admin/${c.link}/${linked}`}>{text}</a>;
  if (c.badge && text) return <span className={`badge badge-${text}`}>{text}</span>;
  return text;
}
