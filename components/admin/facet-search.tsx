'use client';

import Link from 'next/link';
import { useEffect, useState } from 'react';

interface Option {
  value: string;
  label: string;
  count: number;
  href: string;
}

/** A facet with too many values for a list of links (herds): type to find, with counts. */
export function FacetSearch({ facetKey, label, searchUrl, query }: { facetKey: string; label: string; searchUrl: string; query: string }) {
  const [q, setQ] = useState('');
  const [options, setOptions] = useState<Option[] | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    // A blank term has no results: onChange clears them.
    if (!q.trim()) return;
    const ctl = new AbortController();
    const search = async () => {
      try {
        const res = await fetch(`${searchUrl}?term=${encodeURIComponent(q)}${query ? `&${query}` : ''}`, { signal: ctl.signal });
        if (!res.ok) throw new Error(`search failed (${res.status})`);
        setOptions(((await res.json()) as { options: Option[] }).options);
        setError('');
      } catch (err) {
        if (!ctl.signal.aborted) setError(err instanceof Error ? err.message : String(err));
      }
    };
    const t = setTimeout(() => void search(), 150);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [q, searchUrl, query]);

  return (
    <div className="facet-search">
      <input
        type="search"
        aria-label={`Find ${label.toLowerCase()}`}
        placeholder={`Find ${label.toLowerCase()}\u2026`}
        value={q}
        data-facet-search={facetKey}
        onChange={(e) => {
          setQ(e.target.value);
          if (!e.target.value.trim()) setOptions(null);
        }}
      />
      {error && <p className="errornote">{error}</p>}
      {options && (
        <ul>
          {options.length === 0 && <li className="muted">No match</li>}
          {options.map((o) => (
            <li key={o.value}>
              <Link prefetch={false} href={o.href}>
                {o.label}
              </Link>{' '}
              <span className="count">({o.count})</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
