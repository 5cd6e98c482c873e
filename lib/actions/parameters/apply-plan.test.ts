import { describe, expect, it } from 'vitest';
import { member } from '@/lib/testing/refs';
import type { SettingMeta } from '@/lib/fleet/settings/values';
import { wantedSettings, type GroupText } from '@/lib/fleet/settings/wanted';
import { belowThePrimary, planChanges, type MemberSettings } from './apply-plan';
import { patroniParameters } from '@/lib/actions/drivers/patroni/parameters';

const meta = (name: string, context: string, unit: string | null = null): SettingMeta => ({
  name,
  vartype: 'integer',
  unit,
  context,
  minVal: '1',
  maxVal: '262143',
  enumVals: null,
  bootVal: null,
});
const catalog = new Map(
  [
    meta('max_connections', 'postmaster'),
    meta('max_wal_senders', 'postmaster'),
    meta('work_mem', 'user', 'kB'),
    meta('block_size', 'internal'),
  ].map((m) => [m.name, m]),
);
const members = [member(1, 'primary'), member(2, 'replica'), member(3, 'replica')];
const group = (settings: string): GroupText => ({ id: 1, name: 'g', version: 1, settings });
const running = { max_connections: { v: '200' }, max_wal_senders: { v: '10' }, work_mem: { v: '4096' }, block_size: { v: '8192' } };

/** Every member wants `herd`'s settings; member 3 `own` over them. */
function settings(herd: string, own = ''): Map<number, MemberSettings> {
  return new Map(
    members.map((m) => [
      m.id,
      {
        wanted: wantedSettings({
          environmentGroup: group(herd),
          herdGroup: null,
          herdOverrides: '',
          instanceGroup: m.id === 3 && own ? { ...group(own), id: 2 } : null,
          host: { memoryMb: 8192, cpus: 2 },
        }),
        running,
        catalog,
      },
    ]),
  );
}

describe('Apply settings: what it changes', () => {
  it('reloads a reload setting, restarts for a postmaster one, on every member', () => {
    const p = planChanges(members, settings("work_mem = '8MB'\nmax_connections = '300'"), { primaryFirst: false });
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.members.map((m) => [m.member.id, m.changes.map((c) => `${c.name}:${c.to}:${String(c.restart)}`), m.restart])).toEqual([
      [1, ['max_connections:300:true', 'work_mem:8192:false'], true],
      [2, ['max_connections:300:true', 'work_mem:8192:false'], true],
      [3, ['max_connections:300:true', 'work_mem:8192:false'], true],
    ]);
  });

  it('refuses a replica left below its primary, for each setting a hot standby needs', () => {
    const p = planChanges(members, settings("max_wal_senders = '10'", "max_wal_senders = '5'"), { primaryFirst: false });
    expect(p).toMatchObject({ ok: false, problems: [expect.stringMatching(/db-3.*max_wal_senders would be 5, below its primary's 10/)] });
  });

  it('refuses lowering during the roll (replicas restart first) unless the primary restarts first', () => {
    const lower = settings("max_connections = '100'");
    expect(planChanges(members, lower, { primaryFirst: false })).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/lowered to 100 while the primary runs 200/), expect.anything()],
    });
    expect(planChanges(members, lower, { primaryFirst: true })).toMatchObject({
      ok: true,
      lowering: ['max_connections 200 -> 100'],
    });
  });

  it('refuses a setting Postgres does not have, a value it would not take, one fixed at initdb, a formula it cannot compute', () => {
    for (const [text, why] of [
      ["vacuum_buffer_usage_limit = '1MB'", /no setting vacuum_buffer_usage_limit/],
      ["max_connections = 'lots'", /not a number/],
      ["max_connections = '0'", /outside 1 \.\. 262143/],
      ["block_size = '16384'", /block_size is not among the tunables/],
      ["work_mem = '{1 / 0}MB'", /division by zero/],
    ] as const)
      expect(planChanges(members, settings(text), { primaryFirst: false }), text).toMatchObject({
        ok: false,
        problems: expect.arrayContaining([expect.stringMatching(why)]),
      });
  });

  it('refuses a restart that would apply a value written outside the groups, unseen', () => {
    const pendingHere = new Map(
      [...settings("work_mem = '8MB'")].map(([id, x]) => [
        id,
        id === 2 ? { ...x, running: { ...x.running, max_connections: { v: '200', p: true as const } } } : x,
      ]),
    );
    expect(planChanges(members, pendingHere, { primaryFirst: false })).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/db-2.*max_connections written and waiting for a restart, not by its groups/)],
    });
  });

  it('judges the replicas against the member the switchover makes the primary', () => {
    const p = planChanges(members, settings("max_connections = '200'", "max_connections = '300'"), { primaryFirst: false });
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(belowThePrimary(p.members, settings("max_connections = '200'", "max_connections = '300'"), 3)).toEqual([
      expect.stringMatching(
        /db-1.*max_connections would be 200, below its primary's 300 \(db-3.*, once the switchover has made it the primary\)/,
      ),
      expect.stringMatching(/db-2.*max_connections would be 200, below its primary's 300/),
    ]);
  });

  it('refuses members that should differ on a Patroni herd, and a member not running', () => {
    expect(
      planChanges(members, settings("work_mem = '8MB'", "work_mem = '16MB'"), { primaryFirst: false, ...patroniParameters }),
    ).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/Patroni keeps one configuration/)],
    });
    const withHotStandby = new Map(
      [...settings("hot_standby = 'off'")].map(([id, x]) => [
        id,
        {
          ...x,
          running: { ...x.running, hot_standby: { v: 'on' } },
          catalog: new Map([...x.catalog, ['hot_standby', { ...meta('hot_standby', 'postmaster'), vartype: 'bool' }]]),
        },
      ]),
    );
    expect(planChanges(members, withHotStandby, { primaryFirst: false, ...patroniParameters })).toMatchObject({
      ok: false,
      problems: expect.arrayContaining([expect.stringMatching(/hot_standby: Patroni keeps it on itself/)]),
    });
    const down = members.map((m) => (m.id === 2 ? { ...m, state: 'stopped' } : m));
    expect(planChanges(down, settings("work_mem = '8MB'"), { primaryFirst: false })).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/db-2.* is stopped/)],
    });
  });
});

describe('Apply settings: what it never writes', () => {
  it('refuses a setting that runs a command or loads code, however it came to be stored, and plans nothing', () => {
    for (const [text, why] of [
      ["archive_cleanup_command = 'touch /tmp/owned'", /archive_cleanup_command runs a command as the database's operating system user/],
      ["shared_preload_libraries = 'evil'", /shared_preload_libraries loads code into the server/],
      ["log_directory = '/etc'", /log_directory is not among the tunables/],
    ] as const) {
      const withIt = new Map(
        [...settings(text)].map(([id, x]) => [
          id,
          {
            ...x,
            // What a member reports of it: the setting exists and runs something else.
            running: { ...x.running, [text.split(' ')[0] as string]: { v: '' } },
            catalog: new Map([
              ...x.catalog,
              [text.split(' ')[0] as string, { ...meta(text.split(' ')[0] as string, 'sighup'), vartype: 'string' }],
            ]),
          },
        ]),
      );
      const p = planChanges(members, withIt, { primaryFirst: false });
      expect(p, text).toMatchObject({ ok: false, problems: expect.arrayContaining([expect.stringMatching(why)]) });
    }
  });
});
