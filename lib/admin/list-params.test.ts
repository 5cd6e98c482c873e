import { describe, expect, it } from 'vitest';
import { parseListParams, sortByHeader, toQueryString } from './list-params';
import { instancesAdmin } from './models/instances.admin';
import type { AdminDef } from './define-admin';

const def = instancesAdmin as unknown as AdminDef;

describe('parseListParams', () => {
  it('reads search, filters, multi-column sort, page and page size', () => {
    const p = parseListParams(def, { q: ' billing ', environment: '3', role: 'replica', site: 'dc-east', sort: '-lag,server', page: '4', per: '50' });
    expect(p).toEqual({
      q: 'billing',
      filters: { environment: '3', role: 'replica', site: 'dc-east' },
      sort: [{ field: 'lag', desc: true }, { field: 'server', desc: false }],
      page: 4,
      per: 50,
    });
  });

  it('falls back to defaults for unknown or malformed values instead of failing', () => {
    const p = parseListParams(def, {
      role: 'overlord', state: "running'; DROP TABLE instances;--", environment: '-1', herd: 'abc', version: '15.2',
      sort: 'nonsense,-,description', page: 'x', per: '7', bogus: '1',
    });
    expect(p.filters).toEqual({});
    expect(p.sort).toEqual([{ field: 'server', desc: false }, { field: 'port', desc: false }]);
    expect(p.page).toBe(1);
    expect(p.per).toBe(100);
  });

  it('ignores unsortable fields, duplicates and repeated parameters beyond the first', () => {
    const p = parseListParams(def, { sort: 'herdId,lag,-lag', role: ['primary', 'replica'] });
    expect(p.sort).toEqual([{ field: 'lag', desc: false }]);
    expect(p.filters.role).toBe('primary');
  });

  it('rejects absurd pages and caps the search length', () => {
    expect(parseListParams(def, { page: '0' }).page).toBe(1);
    expect(parseListParams(def, { page: '99999999999' }).page).toBe(1);
    expect(parseListParams(def, { q: 'x'.repeat(500) }).q).toHaveLength(200);
  });
});

describe('toQueryString', () => {
  it('round-trips a state and leaves defaults out', () => {
    const p = parseListParams(def, { q: 'a b&c', role: 'replica', sort: '-lag', page: '2', per: '25' });
    const qs = toQueryString(def, p);
    expect(qs).toBe('?q=a+b%26c&role=replica&sort=-lag&per=25&page=2');
    expect(parseListParams(def, Object.fromEntries(new URLSearchParams(qs)))).toEqual(p);
    expect(toQueryString(def, parseListParams(def, {}))).toBe('');
  });
});

describe('sortByHeader', () => {
  it('makes the clicked column primary, toggles it when already primary, keeps the others', () => {
    const s = [{ field: 'lag', desc: true }, { field: 'server', desc: false }];
    expect(sortByHeader(s, 'server')).toEqual([{ field: 'server', desc: false }, { field: 'lag', desc: true }]);
    expect(sortByHeader(s, 'lag')).toEqual([{ field: 'lag', desc: false }, { field: 'server', desc: false }]);
    expect(sortByHeader(s, 'port')).toEqual([{ field: 'port', desc: false }, ...s]);
  });
});
