import { ClientNav } from '@/components/client-nav';
import type { FacetView } from '@/lib/features/admin/types';
import { FacetSearch } from './facet-search';

export function FilterSidebar({ facets, searchUrl, query }: { facets: FacetView[]; searchUrl: string; query: string }) {
  if (!facets.length) return null;
  return (
    <ClientNav className="filters" label="Filters">
      <h2>Filter</h2>
      {facets.map((f) => (
        <section key={f.key} className="facet" data-facet={f.key}>
          <h3>By {f.label.toLowerCase()}</h3>
          <ul>
            <li className={f.selected === null ? 'selected' : undefined}>
              <a href={f.allHref}>All</a>
            </li>
            {f.options.map((o) => (
              <li key={o.value} className={o.active ? 'selected' : undefined}>
                <a href={o.href}>{o.label}</a> <span className="count">({o.count})</span>
              </li>
            ))}
          </ul>
          {f.searchable && <FacetSearch facetKey={f.key} label={f.label} searchUrl={`${searchUrl}/${f.key}`} query={query} />}
        </section>
      ))}
    </ClientNav>
  );
}
