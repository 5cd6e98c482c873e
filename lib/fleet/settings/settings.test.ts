import { describe, expect, it } from 'vitest';
import { parseConf, renderConf } from './conf-text';
import { driftOf } from './drift';
import { checkValue, evaluate, sameValue, show, type SettingMeta } from './values';
import { wantedDigest, wantedSettings, type WantedInputs } from './wanted';
import { withoutSecrets } from './read-settings';

// As pg_settings describes them on Postgres 15.
const meta = (m: Partial<SettingMeta> & { name: string; vartype: string }): SettingMeta => ({
  unit: null,
  context: 'user',
  minVal: null,
  maxVal: null,
  enumVals: null,
  bootVal: null,
  ...m,
});
const sharedBuffers = meta({
  name: 'shared_buffers',
  vartype: 'integer',
  unit: '8kB',
  context: 'postmaster',
  minVal: '16',
  maxVal: '1073741823',
});
const workMem = meta({ name: 'work_mem', vartype: 'integer', unit: 'kB', minVal: '64', maxVal: '2147483647' });
const timeout = meta({ name: 'statement_timeout', vartype: 'integer', unit: 'ms', minVal: '0', maxVal: '2147483647' });
const cost = meta({ name: 'random_page_cost', vartype: 'real', minVal: '0', maxVal: '1.79769e+308' });
const level = meta({ name: 'wal_level', vartype: 'enum', context: 'postmaster', enumVals: ['minimal', 'replica', 'logical'] });
const jit = meta({ name: 'jit', vartype: 'bool' });
const maxConn = meta({ name: 'max_connections', vartype: 'integer', context: 'postmaster', minVal: '1', maxVal: '262143' });

describe('conf text', () => {
  it('reads postgresql.conf lines and writes them one way', () => {
    const p = parseConf(
      "# memory\nwork_mem = 64MB\nShared_Buffers='1GB'  # a quarter\nrandom_page_cost 1.1\nsearch_path = '\"$user\", public'\n",
    );
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(renderConf(p.settings)).toBe(
      "random_page_cost = '1.1'\nsearch_path = '\"$user\", public'\nshared_buffers = '1GB'\nwork_mem = '64MB'",
    );
    expect(parseConf(renderConf(p.settings))).toEqual(p);
  });

  it('refuses what is not a setting, settings set per member, a value twice, and shell-looking bare words', () => {
    const p = parseConf("port = 5433\nwork_mem = 1MB\nwork_mem = 2MB\n= 3\nfoo-bar = 1\nlog_line_prefix = %m $(rm -rf /)\nx = 'open");
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.errors.join('\n')).toMatch(/port is set per member/);
    expect(p.errors.join('\n')).toMatch(/work_mem is set twice/);
    expect(p.errors.join('\n')).toMatch(/line 4: not "name = value"/);
    expect(p.errors.join('\n')).toMatch(/quote the value/);
    expect(p.errors.join('\n')).toMatch(/quote that is not closed/);
  });
});

describe('values as Postgres takes them', () => {
  it('compares memory and time in the setting’s unit', () => {
    expect(checkValue(sharedBuffers, '1GB')).toEqual({ ok: true, value: '131072' });
    expect(checkValue(sharedBuffers, '131072')).toEqual({ ok: true, value: '131072' });
    expect(checkValue(workMem, '4MB')).toEqual({ ok: true, value: '4096' });
    expect(checkValue(timeout, '1min')).toEqual({ ok: true, value: '60000' });
    expect(checkValue(timeout, '1.5s')).toEqual({ ok: true, value: '1500' });
    expect(show(sharedBuffers, '16384')).toBe('128MB');
    expect(show(timeout, '60000')).toBe('1min');
    // As a group can hold it: no unit of its own for 0, the smallest unit for what no unit divides.
    expect(show(timeout, '0')).toBe('0');
    expect(show(meta({ name: 'vacuum_cost_delay', vartype: 'real', unit: 'ms' }), '2.5')).toBe('2.5ms');
  });

  it('refuses values outside the bounds, the wrong unit, unknown choices and non-booleans', () => {
    expect(checkValue(sharedBuffers, '8kB')).toMatchObject({ ok: false, why: expect.stringMatching(/outside 128kB/) });
    expect(checkValue(sharedBuffers, '1s')).toMatchObject({ ok: false, why: expect.stringMatching(/s is not a memory unit/) });
    expect(checkValue(maxConn, '10MB')).toMatchObject({ ok: false, why: expect.stringMatching(/takes no unit/) });
    expect(checkValue(maxConn, 'lots')).toMatchObject({ ok: false });
    expect(checkValue(level, 'archive')).toMatchObject({ ok: false, why: 'wal_level is one of minimal, replica, logical' });
    expect(checkValue(level, 'LOGICAL')).toEqual({ ok: true, value: 'logical' });
    expect(checkValue(jit, 'maybe')).toMatchObject({ ok: false });
    expect(checkValue(jit, 'yes')).toEqual({ ok: true, value: 'on' });
    expect(checkValue(jit, 'of')).toEqual({ ok: true, value: 'off' });
    expect(sameValue(cost, '1.1', '1.10')).toBe(true);
    const dateStyle = meta({ name: 'datestyle', vartype: 'string' });
    expect(sameValue(dateStyle, 'iso, mdy', 'ISO, MDY')).toBe(true);
    expect(sameValue(dateStyle, 'iso, dmy', 'ISO, MDY')).toBe(false);
  });

  it('computes formulas from the host, and says why one cannot be', () => {
    expect(evaluate('{memory_mb / 4}MB', { memoryMb: 16384, cpus: 4 })).toEqual({ ok: true, value: '4096MB' });
    expect(evaluate('{max(cpus / 4, 1)}', { memoryMb: 16384, cpus: 2 })).toEqual({ ok: true, value: '1' });
    expect(evaluate('{min(memory_mb / 16, 2048)}MB', { memoryMb: 65536, cpus: 8 })).toEqual({ ok: true, value: '2048MB' });
    expect(evaluate('{memory_mb / 4}MB', { memoryMb: null, cpus: 4 })).toMatchObject({
      ok: false,
      why: expect.stringMatching(/memory are not known/),
    });
    expect(evaluate('{process.exit()}', { memoryMb: 1, cpus: 1 })).toMatchObject({ ok: false });
    expect(evaluate('{1 / 0}', { memoryMb: 1, cpus: 1 })).toMatchObject({ ok: false, why: expect.stringMatching(/division by zero/) });
  });
});

const inputs = (x: Partial<WantedInputs>): WantedInputs => ({
  environmentGroup: null,
  herdGroup: null,
  herdOverrides: '',
  instanceGroup: null,
  host: { memoryMb: 8192, cpus: 2 },
  ...x,
});

describe('wanted settings', () => {
  const env = { id: 1, name: 'oltp', version: 3, settings: "shared_buffers = '{memory_mb / 4}MB'\nwork_mem = '4MB'\njit = 'on'" };
  const herd = { id: 2, name: 'reporting', version: 1, settings: "work_mem = '64MB'" };
  const inst = { id: 3, name: 'big', version: 2, settings: "jit = 'off'" };

  it('takes the most specific: the herd’s group in place of the environment’s, overrides over it, the instance’s over all', () => {
    const w = wantedSettings(inputs({ environmentGroup: env, herdOverrides: "work_mem = '8MB'", instanceGroup: inst }));
    expect(w.get('shared_buffers')).toMatchObject({ value: '2048MB', from: 'group oltp v3 (environment)' });
    expect(w.get('work_mem')).toMatchObject({ value: '8MB', from: 'herd override' });
    expect(w.get('jit')).toMatchObject({ value: 'off', from: 'group big v2 (instance)' });
    const h = wantedSettings(inputs({ environmentGroup: env, herdGroup: herd }));
    expect([...h.keys()]).toEqual(['work_mem']);
  });

  it('changes its digest when a group’s version, an override or the host moves', () => {
    const a = wantedDigest(inputs({ environmentGroup: env }));
    expect(wantedDigest(inputs({ environmentGroup: { ...env, version: 4 } }))).not.toBe(a);
    expect(wantedDigest(inputs({ environmentGroup: env, herdOverrides: "jit = 'off'" }))).not.toBe(a);
    expect(wantedDigest(inputs({ environmentGroup: env, host: { memoryMb: 4096, cpus: 2 } }))).not.toBe(a);
    expect(wantedDigest(inputs({ environmentGroup: env }))).toBe(a);
  });
});

describe('drift', () => {
  const catalog = new Map([sharedBuffers, workMem, jit, maxConn].map((m) => [m.name, m]));
  const w = wantedSettings(
    inputs({
      environmentGroup: {
        id: 1,
        name: 'g',
        version: 1,
        settings:
          "shared_buffers = '1GB'\nwork_mem = '4MB'\njit = 'off'\nmax_connections = 'many'\nvacuum_buffer_usage_limit = '1MB'\neffective_cache_size = '{memory_mb}MB'",
      },
      host: { memoryMb: null, cpus: null },
    }),
  );

  it('names each setting that differs, waits for a restart, does not exist, would be refused or cannot be computed', () => {
    const d = driftOf(
      w,
      {
        shared_buffers: { v: '16384', s: 'configuration file', p: true },
        work_mem: { v: '4096', s: 'configuration file' },
        jit: { v: 'on', s: 'configuration file', f: '/d/postgresql.auto.conf:3' },
        max_connections: { v: '100' },
      },
      catalog,
    );
    expect(d.map((e) => [e.name, e.kind])).toEqual([
      ['effective_cache_size', 'unresolved'],
      ['jit', 'differs'],
      ['max_connections', 'invalid'],
      ['shared_buffers', 'pending-restart'],
      ['vacuum_buffer_usage_limit', 'unknown-setting'],
    ]);
    expect(d.find((e) => e.name === 'jit')).toMatchObject({
      runningShown: 'on',
      wantedShown: 'off',
      source: 'configuration file /d/postgresql.auto.conf:3',
    });
    expect(d.find((e) => e.name === 'shared_buffers')).toMatchObject({ runningShown: '128MB', wantedShown: '1GB' });
  });
});

describe('what is kept of a reading', () => {
  it('never a password: primary_conninfo and commands keep their shape without it', async () => {
    expect(withoutSecrets('host=10.0.0.1 port=5432 user=repl password=S3cret application_name=r1')).toBe(
      'host=10.0.0.1 port=5432 user=repl password=******** application_name=r1',
    );
    // libpq's quoting: a quoted value, a quote inside escaped with a backslash.
    expect(withoutSecrets("host=a password='it\\'s secret' sslmode=verify-full")).toBe('host=a password=******** sslmode=verify-full');
    expect(withoutSecrets('PASSWORD = x')).toBe('PASSWORD = ********');
    expect(withoutSecrets('4MB')).toBe('4MB');
  });
});
