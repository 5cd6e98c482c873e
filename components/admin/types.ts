// What the server hands the changelist components: plain, serializable data.
export interface Cell {
  text: string;
  href?: string;
  badge?: string;
}

export interface ColumnView {
  key: string;
  label: string;
  /** Link that sorts by this column; absent when it cannot be sorted. */
  sortHref?: string;
  sortDir?: 'asc' | 'desc';
  sortPriority?: number;
  removeSortHref?: string;
  numeric?: boolean;
}

export interface RowView {
  id: number;
  cells: Record<string, Cell>;
}

export interface ActionView {
  name: string;
  label: string;
  /** Where the action's confirmation page lives; ids or all=1 plus the list's query are appended. */
  href: string;
}
