// A list of rows as the console draws one: a header per column, a line saying there is nothing, and a row
// per item carrying the data attributes tests and scripts find it by. Server-rendered; no state.
import type { ReactNode } from 'react';

export interface Column<T> {
  /** Its header (empty for a column of buttons). */
  header: ReactNode;
  cell: (row: T) => ReactNode;
  /** Where a number is right-aligned, say. */
  className?: string;
  /** The cell's data-col attribute, where tests and scripts read one cell of a row. */
  col?: string;
  /** The cell's tooltip: the whole of what the cell shortens. */
  title?: (row: T) => string | undefined;
}

export function ResultTable<T>({
  testId,
  columns,
  rows,
  rowKey,
  rowData,
  rowClass,
  empty,
  className,
}: {
  testId?: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string | number;
  /** Each row's data-* attributes, named without the prefix ({ token: 'pgh_ab' } is data-token). */
  rowData?: (row: T) => Record<string, string | number>;
  /** A row's class, where a row stands out (refused, warning). */
  rowClass?: (row: T) => string | undefined;
  /** What the table says when there is no row (no line at all when a table is never empty). */
  empty?: ReactNode;
  className?: string;
}) {
  return (
    <table className={className ? `result-list ${className}` : 'result-list'} data-testid={testId}>
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th key={i} scope="col" className={c.className}>
              {c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 && empty !== undefined && (
          <tr>
            <td colSpan={columns.length}>{empty}</td>
          </tr>
        )}
        {rows.map((r) => (
          <tr
            key={rowKey(r)}
            className={rowClass?.(r)}
            {...Object.fromEntries(Object.entries(rowData?.(r) ?? {}).map(([k, v]) => [`data-${k}`, String(v)]))}
          >
            {columns.map((c, i) => (
              <td key={i} className={c.className} title={c.title?.(r)} data-col={c.col}>
                {c.cell(r)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
