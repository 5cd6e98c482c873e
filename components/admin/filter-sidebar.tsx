'use client';

import { ClientNav } from '@/components/client-nav';
import type { FacetView } from '@/lib/features/admin/types';
import { FacetSearch } from './facet-search';

/** A value as URLSearchParams writes it, which is how the server wrote the links around it (facetViews). */
const encoded = (value: string) => new URLSearchParams([['v', value]]).toString().slice(2);

/**
 * The changelist's filters. Drawn in the browser from the facets' values and counts (the server draws
 * the same on the first load): as server components, every option's markup travelled twice, as HTML and
 * again in the page's data.
 */
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
            {f.options.map(([value, label, count, href]) => (
              <li key={value} className={f.selected === value ? 'selected' : undefined}>
                <a href={href ?? (f.hrefAround ? f.hrefAround[0] + encoded(value) + f.hrefAround[1] : undefined)}>{label}</a>{' '}
                <span className="count">{`(${count})`}</span>
              </li>
            ))}
          </ul>
          {f.searchable && <FacetSearch facetKey={f.key} label={f.label} searchUrl={`${searchUrl}/${f.key}`} query={query} />}
        </section>
      ))}
    </ClientNav>
  );
}
