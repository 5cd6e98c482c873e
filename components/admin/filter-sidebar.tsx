import Link from 'next/link';
import type { FacetView } from '@/lib/admin/types';
import { FacetSearch } from './facet-search';

export function FilterSidebar({ facets, searchUrl, query }: { facets: FacetView[]; searchUrl: string; query: string }) {
  if (!facets.length) return null;
  return (
    <aside className="filters" aria-label="Filters">
      <h2>Filter</h2>
      {facets.map((f) => (
        <section key={f.key} className="facet" data-facet={f.key}>
          <h3>By {f.label.toLowerCase()}</h3>
          <ul>
            <li className={f.selected === null ? 'selected' : undefined}>
              <Link prefetch={false} href={f.allHref}>
                All
              </Link>
            </li>
            {f.options.map((o) => (
              <li key={o.value} className={o.active ? 'selected' : undefined}>
                <Link prefetch={false} href={o.href}>
                  {o.label}
                </Link>{' '}
                <span className="count">({o.count})</span>
              </li>
            ))}
          </ul>
          {f.searchable && <FacetSearch facetKey={f.key} label={f.label} searchUrl={`${searchUrl}/${f.key}`} query={query} />}
        </section>
      ))}
    </aside>
  );
}
