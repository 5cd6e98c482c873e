import { describe, expect, it } from 'vitest';
import { facetViews } from './changelist-view';
import { parseListParams, toQueryString } from './list-params';
import { instancesAdmin } from './models/instances.admin';
import { packRows, unpackRows } from './packed-rows';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import type { Facet } from './list-query';
import type { RowView } from './types';

const def = instancesAdmin;
/** An option's link as the browser's FilterSidebar assembles it. */
const linkOf = (around: [string, string] | null, value: string, own?: string) =>
  own ?? (around ? around[0] + new URLSearchParams([['v', value]]).toString().slice(2) + around[1] : undefined);

describe("the changelist's data for the browser", () => {
  it("gives each facet option the link toQueryString makes, whatever the value and the list's other parameters", () => {
    const values = ['prod', 'a b&c=d', 'ünïcode/é', '100%', '+plus', '%00', ''];
    for (const q of ['', 'db 1&x', 'has\u0000nul', '%00']) {
      const p = parseListParams(def, { q, role: 'replica', sort: '-lag', page: '3', per: '25' }, SYSTEM_ACCESS);
      const facets: Facet[] = [
        {
          key: 'site',
          label: 'Site',
          searchable: false,
          selected: null,
          options: values.map((v, i) => ({ value: v, label: v, count: i })),
        },
      ] as Facet[];
      const [view] = facetViews(def, p, facets);
      for (const [value, , , own] of view!.options) {
        const expected = `/admin/instances${toQueryString(def, p, { filters: { ...p.filters, site: value }, page: 1 })}`;
        expect(linkOf(view!.hrefAround, value, own), `${JSON.stringify(q)} / ${JSON.stringify(value)}`).toBe(expected);
      }
    }
  });

  it('packs rows with each distinct text once, and unpacks them as they were', () => {
    const rows: RowView[] = [
      { id: 1, values: ['db1', 'env-01', 'primary', ''], links: { 1: 7 } },
      { id: 2, values: ['db2', 'env-01', 'replica', ''], locked: true },
      { id: 3, values: ['db3', 'env-02', 'replica', 'x'], links: { 1: 8 }, locked: true },
      { id: 4, values: ['db4', 'env-02', 'replica', 'x'] },
    ];
    const packed = packRows(rows);
    expect(packed.texts).toEqual(['db1', 'env-01', 'primary', '', 'db2', 'replica', 'db3', 'env-02', 'x', 'db4']);
    expect(unpackRows(JSON.parse(JSON.stringify(packed)) as typeof packed)).toEqual(rows);
  });
});
