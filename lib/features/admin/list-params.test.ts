import { describe, expect, it } from 'vitest';
import { parseListParams, sortByHeader, toQueryString } from './list-params';
import { instancesAdmin } from './models/instances.admin';
import { SYSTEM_ACCESS, accessFrom, noAccess } from '@/lib/engine/access';

const def = instancesAdmin;

describe('parseListParams', () => {
  it('sorts only by the model\u2019s own fields, never by a name every object inherits', () => {
    for (const sort of ['constructor', '__proto__', 'toString', '-hasOwnProperty', 'port,constructor']) {
      expect(parseListParams(def, { sort }, SYSTEM_ACCESS).sort, sort).toEqual(
        sort === 'port,constructor' ? [{ field: 'port', desc: false }] : parseListParams(def, {}, SYSTEM_ACCESS).sort,
      );
    }
  });

  it('reads search, filters, multi-column sort, page and page size', () => {
    const p = parseListParams(
      def,
      { q: ' billing ', environment: '3', role: 'replica', site: 'dc-east', sort: '-lag,server', page: '4', per: '50' },
      SYSTEM_ACCESS,
    );
    expect(p).toEqual({
      q: 'billing',
      filters: { environment: '3', role: 'replica', site: 'dc-east' },
      sort: [
        { field: 'lag', desc: true },
        { field: 'server', desc: false },
      ],
      page: 4,
      per: 50,
      scope: null,
    });
  });

  it("takes the scope from the user's roles, never from the query string", () => {
    const staging = accessFrom({ id: 7, username: 'bob', superuser: false }, [
      { role: 'operator', environmentId: 2 },
      { role: 'viewer', environmentId: 5 },
    ]);
    expect(parseListParams(def, { scope: '1,2,3' }, staging).scope).toEqual([2, 5]);
    expect(
      parseListParams(def, {}, accessFrom({ id: 8, username: 'carol', superuser: false }, [{ role: 'viewer', environmentId: null }])).scope,
    ).toBeNull();
    expect(parseListParams(def, {}, noAccess('dave')).scope).toEqual([]);
  });

  it('falls back to defaults for unknown or malformed values instead of failing', () => {
    const p = parseListParams(
      def,
      {
        role: 'overlord',
        state: "running'; DROP TABLE instances;--",
        environment: '-1',
        herd: 'abc',
        version: '15.2',
        sort: 'nonsense,-,description',
        page: 'x',
        per: '7',
        bogus: '1',
      },
      SYSTEM_ACCESS,
    );
    expect(p.filters).toEqual({});
    expect(p.sort).toEqual([
      { field: 'server', desc: false },
      { field: 'port', desc: false },
    ]);
    expect(p.page).toBe(1);
    expect(p.per).toBe(100);
  });

  it('ignores unsortable fields, duplicates and repeated parameters beyond the first', () => {
    const p = parseListParams(def, { sort: 'herdId,lag,-lag', role: ['primary', 'replica'] }, SYSTEM_ACCESS);
    expect(p.sort).toEqual([{ field: 'lag', desc: false }]);
    expect(p.filters.role).toBe('primary');
  });

  it('rejects absurd pages and caps the search length', () => {
    expect(parseListParams(def, { page: '0' }, SYSTEM_ACCESS).page).toBe(1);
    expect(parseListParams(def, { page: '99999999999' }, SYSTEM_ACCESS).page).toBe(1);
    expect(parseListParams(def, { q: 'x'.repeat(500) }, SYSTEM_ACCESS).q).toHaveLength(200);
  });
});

describe('toQueryString', () => {
  it('round-trips a state and leaves defaults out', () => {
    const p = parseListParams(def, { q: 'a b&c', role: 'replica', sort: '-lag', page: '2', per: '25' }, SYSTEM_ACCESS);
    const qs = toQueryString(def, p);
    expect(qs).toBe('?q=a+b%26c&role=replica&sort=-lag&per=25&page=2');
    expect(parseListParams(def, Object.fromEntries(new URLSearchParams(qs)), SYSTEM_ACCESS)).toEqual(p);
    expect(toQueryString(def, parseListParams(def, {}, SYSTEM_ACCESS))).toBe('');
  });
});

describe('sortByHeader', () => {
  it('makes the clicked column primary, toggles it when already primary, keeps the others', () => {
    const s = [
      { field: 'lag', desc: true },
      { field: 'server', desc: false },
    ];
    expect(sortByHeader(s, 'server')).toEqual([
      { field: 'server', desc: false },
      { field: 'lag', desc: true },
    ]);
    expect(sortByHeader(s, 'lag')).toEqual([
      { field: 'lag', desc: false },
      { field: 'server', desc: false },
    ]);
    expect(sortByHeader(s, 'port')).toEqual([{ field: 'port', desc: false }, ...s]);
  });
});
