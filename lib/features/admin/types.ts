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

/**
 * A page's rows as they travel to the browser, inside the page's RSC payload: every distinct text once
 * (`texts`), and each row as [id, its cells' indexes into `texts`, its links, locked]. A changelist's
 * texts repeat down a page (the environment, the role, the state, the version): this is about half
 * the bytes of the rows as lists of strings, and the payload is most of a page's weight.
 */
export interface PackedRows {
  texts: string[];
  rows: [id: number, cells: number[], links?: Record<number, number> | 0, locked?: 1][];
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
  /**
   * An option's link: hrefAround[0], its value encoded as a query string encodes it, hrefAround[1]. The
   * links of a facet differ only there, and the page's data carries every option of every facet.
   */
  hrefAround: [string, string] | null;
  /** [value, label, count], and the option's own link where it is not assembled from hrefAround. */
  options: [value: string, label: string, count: number, href?: string][];
}
