// Every console form refuses bad input with messages written for people, and names that would look
// like other names on screen.
import { describe, expect, it } from 'vitest';
import { getTableColumns } from 'drizzle-orm';
import { integer, pgEnum, pgTable, serial, text } from 'drizzle-orm/pg-core';
import { adminModels } from './registry';
import { isEditable, type EditableModel } from './define-admin';
import { f, fieldViews, tableForm } from './form-fields';
import { MAX_BIG_ID, MAX_ID } from '@/lib/adapters/validation/ids';
import { idList, MAX_SELECTION, parseSelection } from '@/lib/adapters/validation/selection';
import { planBody } from '@/lib/engine/operation-schemas';
import { newTokenForm } from '@/lib/features/auth/api-tokens';

const SCHEMA_TALK = /Too (big|small)|expected|Invalid (input|option)|received|<=|>=/;

const forms: Record<string, EditableModel['form']> = Object.fromEntries(adminModels.filter(isEditable).map((m) => [m.name, m.form]));

function messages(model: string, input: Record<string, unknown>): Record<string, string> {
  const r = forms[model]!.schema.safeParse(input);
  if (r.success) return {};
  const out: Record<string, string> = {};
  for (const i of r.error.issues) out[String(i.path[0] ?? '')] ??= i.message;
  return out;
}

describe('form messages', () => {
  it('are sentences for people, for missing, overlong, mistyped and out-of-range values, in every form', () => {
    for (const [model, spec] of Object.entries(forms)) {
      const long = Object.fromEntries(spec.fields.map((f) => [f.name, 'x'.repeat(5000)]));
      const wrong = Object.fromEntries(
        spec.fields.map((f) => [f.name, f.input.type === 'number' || f.input.type === 'relation' ? String(2 ** 53) : ['a', 'b']]),
      );
      for (const input of [{}, long, wrong]) {
        for (const [field, m] of Object.entries(messages(model, input))) {
          expect(m, `${model}.${field}: ${m}`).not.toMatch(SCHEMA_TALK);
          expect(m, `${model}.${field}: ${m}`).toMatch(/^[A-Z].*\.$/);
        }
      }
    }
  });

  it('say "At most N characters." for text that is too long', () => {
    expect(messages('environments', { name: 'x'.repeat(64) }).name).toBe('At most 63 characters.');
  });

  it('refuse control characters, line breaks and direction overrides in names', () => {
    for (const name of [
      'prod\u202Euction',
      'prod\nuction',
      'prod\u0000',
      'a\u2066b\u2069',
      'x\u200F',
      'qa\u2028env',
      '\u200Bproduction',
      'pro\u00ADduction',
      'a\uFEFFb',
    ]) {
      expect(messages('environments', { name }).name).toBe(
        'Control characters, line breaks, invisible characters and text-direction marks are not allowed.',
      );
    }
    expect(messages('environments', { name: 'production-eu (Zürich) <b>' }).name).toBeUndefined();
    // A description may have line breaks, never a direction override.
    expect(messages('environments', { name: 'p', description: 'line one\nline two' }).description).toBeUndefined();
    expect(messages('environments', { name: 'p', description: 'x\u202E' }).description).toMatch(/not allowed/);
  });

  it('refuse ids beyond the range of the table they name: integer for a herd, bigint (up to 2^53 - 1) for an instance', () => {
    expect(messages('instances', { herdId: String(MAX_ID + 1) }).herdId).toBe('Choose one.');
    expect(messages('instances', { upstreamInstanceId: String(MAX_ID + 1) }).upstreamInstanceId).toBeUndefined();
    expect(messages('instances', { upstreamInstanceId: String(MAX_BIG_ID) }).upstreamInstanceId).toBeUndefined();
    expect(messages('instances', { upstreamInstanceId: String(MAX_BIG_ID + 1) }).upstreamInstanceId).toBe(
      'Enter an id, or leave it empty.',
    );
  });

  it('read a whole number only as one is typed: not 1e3, 0x16, 22.0, [24] or true', () => {
    const valid = { hostname: 'db-9', environmentId: '2', address: '', site: '', sshPort: '22', sshUser: 'postgres' };
    for (const sshPort of ['1e3', '0x16', '0b10111', '22.0', [24], ['25'], true, '', '12abc']) {
      expect(messages('servers', { ...valid, sshPort }).sshPort, JSON.stringify(sshPort)).toBeDefined();
    }
    for (const environmentId of ['1e0', [2], '0x2', true]) {
      expect(messages('servers', { ...valid, environmentId }).environmentId, JSON.stringify(environmentId)).toBe('Choose one.');
    }
    expect(forms.servers!.schema.parse({ ...valid, sshPort: ' 2222 ', environmentId: 2 })).toMatchObject({
      sshPort: 2222,
      environmentId: 2,
    });
    expect(messages('role-bindings', { role: 'viewer', subjectType: 'user', subject: 'bob', environmentId: '1e0' }).environmentId).toBe(
      'Enter an id, or leave it empty.',
    );
  });

  it('take a server\u2019s address as a host name or an IP address, and its SSH user as a user name', () => {
    const valid = { hostname: 'db-9', environmentId: '2', site: '', sshPort: '22', sshUser: 'postgres' };
    for (const address of ['', '10.0.0.5', 'db-9.example.com', '::1', 'fe80::1'])
      expect(messages('servers', { ...valid, address }).address, address).toBeUndefined();
    for (const address of ['127.0.0.1; rm -rf /', 'a b', '$(id)', 'db_9!'])
      expect(messages('servers', { ...valid, address }).address, address).toMatch(/host name or an IP/);
    for (const sshUser of ['root;rm -rf /', 'a b', '-x', '$USER'])
      expect(messages('servers', { ...valid, address: '', sshUser }).sshUser, sshUser).toMatch(/user name/);
  });

  it("take a member's Patroni REST address as an address alone, and a herd's Patroni scope as patroni.yml writes it", () => {
    const member = { herdId: '1', serverId: '1', port: '5432', pgVersion: '15', role: 'replica', state: 'running' };
    for (const patroniUrl of ['', 'https://db-1.example.com:8008', 'https://10.0.0.5:8008', 'https://db-1'])
      expect(messages('instances', { ...member, patroniUrl }).patroniUrl, patroniUrl).toBeUndefined();
    for (const patroniUrl of [
      'https://db-1:8008/cluster',
      'https://user:pw@db-1:8008',
      'ftp://db-1',
      'https://db-1:70000',
      'https://db 1:8008',
      'https://[::1]:8008',
      'https://db-1:8008?x=1',
      // The credentials go over TLS only.
      'http://10.0.0.5:8008',
    ])
      expect(messages('instances', { ...member, patroniUrl }).patroniUrl, patroniUrl).toMatch(/^Enter an address such as https:/);
    const herd = { environmentId: '1', name: 'h', defaultPort: '5432', pgVersion: '15', controlDriver: 'patroni', automation: 'enabled' };
    expect(messages('herds', { ...herd, patroniScope: 'billing-main.v2' }).patroniScope).toBeUndefined();
    expect(messages('herds', { ...herd, patroniScope: 'billing main' }).patroniScope).toMatch(/as in patroni.yml/);
  });
});

describe('a model\u2019s form, derived from its table', () => {
  const mood = pgEnum('mood', ['calm', 'tense']);
  const parents = pgTable('parents', { id: serial('id').primaryKey(), name: text('name').notNull() });
  const things = pgTable('things', {
    id: serial('id').primaryKey(),
    parentId: integer('parent_id')
      .notNull()
      .references(() => parents.id),
    name: text('name').notNull(),
    note: text('note').notNull().default(''),
    alias: text('alias'),
    mood: mood('mood').notNull().default('calm'),
    maybeMood: mood('maybe_mood'),
    size: integer('size').notNull(),
  });
  const parentModel = () => ({ name: 'parents', label: 'parent' });

  it('takes choices, required-ness and blank-as-null from the columns, and the rest from the declaration', () => {
    const form = tableForm(things, {
      parentId: { label: 'Parent', references: parentModel },
      name: { label: 'Name' },
      note: { label: 'Note', input: { type: 'textarea' } },
      alias: { label: 'Alias' },
      mood: { label: 'Mood' },
      maybeMood: { label: 'Maybe' },
      size: { label: 'Size', schema: f.int(1, 10) },
    });
    expect(fieldViews(form)).toEqual([
      { name: 'parentId', label: 'Parent', input: { type: 'relation' } },
      { name: 'name', label: 'Name', input: { type: 'text' } },
      { name: 'note', label: 'Note', input: { type: 'textarea' } },
      { name: 'alias', label: 'Alias', input: { type: 'text' } },
      { name: 'mood', label: 'Mood', input: { type: 'select', choices: ['calm', 'tense'], optional: false } },
      { name: 'maybeMood', label: 'Maybe', input: { type: 'select', choices: ['calm', 'tense'], optional: true } },
      { name: 'size', label: 'Size', input: { type: 'number' } },
    ]);
    expect(form.schema.parse({ parentId: '3', name: ' a ', note: '', alias: '', mood: 'tense', maybeMood: '', size: '4' })).toEqual({
      parentId: 3,
      name: 'a',
      note: '',
      alias: null,
      mood: 'tense',
      maybeMood: null,
      size: 4,
    });
    const bad = form.schema.safeParse({ parentId: '', name: '', mood: 'angry', size: '11' });
    expect(Object.fromEntries((bad.error?.issues ?? []).map((i) => [String(i.path[0]), i.message]))).toEqual({
      parentId: 'Choose one.',
      name: 'This field is required.',
      mood: 'Choose one of: calm, tense.',
      size: 'At most 10.',
    });
  });

  it('refuses, when the models load, a field the table cannot check alone or that names no column', () => {
    expect(() => tableForm(things, { parentId: { label: 'Parent' } })).toThrow(
      /things.parentId refers to another table: its field must name the model/,
    );
    expect(() => tableForm(things, { size: { label: 'Size' } })).toThrow(
      /things.size \(number\): the table cannot say what a valid value is/,
    );
    // @ts-expect-error: the compiler refuses a key that is not a column
    expect(() => tableForm(things, { colour: { label: 'Colour' } })).toThrow(/things.colour is not a column/);
  });

  it('in every model: each field is a column of the model\u2019s table, and each reference names a registered model', () => {
    for (const m of adminModels.filter(isEditable)) {
      const columns = getTableColumns(m.table);
      for (const field of m.form.fields) {
        expect(columns[field.name], `${m.name}.${field.name}`).toBeDefined();
        if (field.references) expect(adminModels, `${m.name}.${field.name}`).toContain(field.references());
      }
    }
  });
});

describe('a bulk selection', () => {
  it('is de-duplicated, bounded, and refuses anything but ids', () => {
    expect(idList().parse(`3,1,3,${MAX_ID}`)).toEqual([3, 1, MAX_ID]);
    for (const bad of ['0', '1,,2', `1,${MAX_ID + 1}`, '1;2', '', ' 1', '-1']) expect(idList().safeParse(bad).success, bad).toBe(false);
    // Instances' and operations' ids are bigint: up to 2^53 - 1, never past it (nor rounded to it).
    expect(idList(MAX_BIG_ID).parse(`${MAX_ID + 1},${MAX_BIG_ID}`)).toEqual([MAX_ID + 1, MAX_BIG_ID]);
    for (const bad of [`${MAX_BIG_ID + 1}`, '9007199254740993', '12345678901234567'])
      expect(idList(MAX_BIG_ID).safeParse(bad).success, bad).toBe(false);
    expect(parseSelection({ ids: String(MAX_ID + 1) })).toMatchObject({ ok: false });
    expect(parseSelection({ ids: String(MAX_ID + 1) }, MAX_BIG_ID)).toEqual({ ok: true, selection: { all: false, ids: [MAX_ID + 1] } });
    const many = Array.from({ length: MAX_SELECTION + 1 }, (_, i) => i + 1).join(',');
    expect(parseSelection({ ids: many })).toEqual({
      ok: false,
      empty: false,
      error: `At most ${MAX_SELECTION} objects at once: narrow the selection.`,
    });
    // Repeats of the same ids are one selection, not a way past the bound.
    expect(parseSelection({ ids: Array.from({ length: 3000 }, () => '7').join(',') })).toEqual({
      ok: true,
      selection: { all: false, ids: [7] },
    });
    expect(parseSelection({ all: '1', ids: 'junk' })).toEqual({ ok: true, selection: { all: true } });
    expect(parseSelection({})).toEqual({ ok: false, empty: true, error: 'Nothing was selected.' });
    expect(parseSelection({ ids: ['1', '2'] })).toEqual({
      ok: false,
      empty: false,
      error: 'The selection is given twice: give ids once, as a comma-separated list.',
    });
    // The API's bodies: each id once, then the bound.
    expect(planBody.parse({ action: 'reload', instanceIds: Array.from({ length: 5000 }, () => 2) }).instanceIds).toEqual([2]);
    expect(planBody.safeParse({ action: 'reload', instanceIds: Array.from({ length: MAX_SELECTION + 1 }, (_, i) => i + 1) }).success).toBe(
      false,
    );
  });
});

describe('API token names', () => {
  it('refuse what would read differently on screen, as every other name does', () => {
    for (const name of ['ci\u202Egnp', 'ci\u0007', 'a\u200Bb', 'x\u2028y']) {
      expect(newTokenForm.safeParse({ name, scope: 'read' }).error?.issues[0]!.message).toBe(
        'Control characters, line breaks, invisible characters and text-direction marks are not allowed.',
      );
    }
    expect(newTokenForm.safeParse({ name: 'ci <deploy> & "nightly"', scope: 'read' }).success).toBe(true);
  });
});
