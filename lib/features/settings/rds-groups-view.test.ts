import { describe, expect, it } from 'vitest';
import type { SettingMeta } from '@/lib/fleet/settings/values';
import type { WantedSetting } from '@/lib/fleet/settings/wanted';
import { groupDrift } from './rds-groups-view';

const meta = (name: string, vartype: string, unit: string | null, context = 'user'): SettingMeta => ({
  name,
  vartype,
  unit,
  context,
  minVal: null,
  maxVal: null,
  enumVals: null,
  bootVal: null,
});
const catalog = new Map(
  [
    meta('work_mem', 'integer', 'kB'),
    meta('shared_buffers', 'integer', '8kB', 'postmaster'),
    meta('log_connections', 'bool', null),
    meta('statement_timeout', 'integer', 'ms'),
  ].map((m) => [m.name, m]),
);
const want = (entries: [string, string | null][]): Map<string, WantedSetting> =>
  new Map(entries.map(([name, value]) => [name, { value, written: value ?? '{bad}', from: 'group oltp v2 (environment)' }]));

describe("an RDS group's drift from pgherd's groups", () => {
  it('compares in the setting’s unit (the group holds base units, booleans as 1 or 0), and says what the group does not set', () => {
    const r = groupDrift(
      want([
        ['work_mem', '6MB'],
        ['shared_buffers', '48MB'],
        ['log_connections', 'on'],
        ['statement_timeout', '30s'],
      ]),
      [
        { name: 'work_mem', value: '6144', applyType: 'dynamic' },
        { name: 'shared_buffers', value: '8192', applyType: 'static' },
        { name: 'log_connections', value: '1', applyType: 'dynamic' },
      ],
      catalog,
    );
    expect(r.drift).toEqual([
      { name: 'shared_buffers', wanted: '48MB', from: 'group oltp v2 (environment)', inGroup: '64MB' },
      { name: 'statement_timeout', wanted: '30s', from: 'group oltp v2 (environment)', inGroup: null },
    ]);
    expect(r.outside).toEqual([]);
  });

  it('names what was set in the group outside pgherd’s groups, and skips a formula that cannot be computed', () => {
    const r = groupDrift(
      want([['work_mem', null]]),
      [
        { name: 'work_mem', value: '1024', applyType: 'dynamic' },
        { name: 'log_connections', value: '0', applyType: 'dynamic' },
        { name: 'rds.force_ssl', value: '1', applyType: 'dynamic' },
      ],
      catalog,
    );
    expect(r.drift).toEqual([]);
    expect(r.outside).toEqual([
      { name: 'log_connections', value: 'off' },
      { name: 'rds.force_ssl', value: '1' },
    ]);
  });
});
