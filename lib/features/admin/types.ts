// What the server hands the changelist components: plain, serializable, compact data
// (a page of 500 rows travels twice, as HTML and as the React payload).
export interface ColumnView {
  key: string;
  label: string;
  /** Link that sorts by this column; absent when it cannot be sorted. */
  sortHref?: string;
  sortDir?: 'asc' | 'desc';
  sortPriority?: number;
  removeSortHref?: string;
  numeric?: boolean;
  badge?: boolean;
  /** Cells link to the row's own page ('self') or to /admin/<this model name>/<the id in RowView.links>. */
  link?: string;
}

export interface RowView {
  id: number;
  /** One display string per column, in column order. */
  values: string[];
  /** For columns that link to a related object: its id, by column index. */
  links?: Record<number, number>;
  /** No action offered here may be used on this row (the user lacks the role in its environment): no checkbox. */
  locked?: boolean;
}

export interface ActionView {
  name: string;
  label: string;
  /** Where the action's confirmation page lives; ids or all=1 plus the list's query are appended. */
  href: string;
}

export interface FacetView {
  key: string;
  label: string;
  searchable: boolean;
  allHref: string;
  selected: string | null;
  selectedLabel?: string;
  options: { value: string; label: string; count: number; href: string; active: boolean }[];
}
