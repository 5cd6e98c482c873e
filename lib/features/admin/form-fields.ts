// A model's form, derived from its drizzle table: drizzle-zod gives each column's shape (its type,
// whether it may be null, an enum's values, whether it refers to another table), and a model states
// only what the table cannot say (a port's range, a name's length, a path's format) and how each
// field reads on the page. The page gets the fields as plain data; the schema stays on the server,
// which is the one judge of what is saved (Django's ModelForm, validated where it is saved).
import { getTableColumns, type Column } from 'drizzle-orm';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import { createInsertSchema } from 'drizzle-zod';
import { isIP } from 'node:net';
import { z } from 'zod';
import { isPlainName, isPlainText, NO_TRICKS } from '@/lib/adapters/validation/text';
import { MAX_ID, maxIdOfType, wholeNumber } from '@/lib/adapters/validation/ids';
import '@/lib/adapters/validation/messages';

/** How a field is drawn: plain data, sent to the browser as is. */
export type InputSpec =
  | { type: 'text'; placeholder?: string }
  | { type: 'textarea' }
  | { type: 'number' }
  | { type: 'select'; choices: readonly string[]; optional?: boolean }
  /** A select of the referenced model's rows (those the user may use), loaded by the page. */
  | { type: 'relation' };

/** What the page needs to draw one field. */
export interface FieldView {
  name: string;
  label: string;
  help?: string;
  input: InputSpec;
}

/** Any model, as the form knows it: what it refers to is checked by its declaration (lib/features/admin/define-admin). */
export interface Referenced {
  name: string;
  label: string;
}

export interface FormField<M extends Referenced = Referenced> extends FieldView {
  /** The model whose row this field's value is the id of, by value: the save path checks that row (it exists, the user may use it, its environment). */
  references?: () => M;
}

export interface ModelForm<M extends Referenced = Referenced> {
  /** Parses what the page (or a hand-made request) sends: strings in, typed column values out. */
  schema: z.ZodType<Record<string, unknown>>;
  fields: FormField<M>[];
}

/** One field's declaration: the label and help always; the rest only where the table cannot say. */
export interface FieldDecl<M extends Referenced = Referenced> {
  label: string;
  help?: string;
  /** How to draw it, when not the column's default (text, number, a select of an enum's values, a select of related rows). */
  input?: InputSpec;
  /** The checks, when the column's type is not enough: integers need their range, required text its length. */
  schema?: z.ZodType;
  /** Required for a column that refers to another table. */
  references?: () => M;
}

type ColumnKey<T extends PgTable> = Extract<keyof T['_']['columns'], string>;

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const blankToNull = (v: unknown) => (v === '' || v === undefined ? null : v);

export const f = {
  /** Required text, trimmed; stored exactly as typed otherwise (HTML and quotes are data), but no control or direction characters. */
  name: (max = 100) =>
    z.string().trim().min(1, 'This field is required.').max(max, `At most ${max} characters.`).refine(isPlainName, NO_TRICKS),
  text: (max = 2000) => z.string().trim().max(max, `At most ${max} characters.`).refine(isPlainText, NO_TRICKS).default(''),
  /** A whole number typed in a form: "42", never "1e3", "0x2a" or [42] (see wholeNumber). */
  int: (min: number, max: number) =>
    wholeNumber(
      z.number({ message: 'Enter a whole number.' }).int('Enter a whole number.').min(min, `At least ${min}.`).max(max, `At most ${max}.`),
    ),
  /** A whole number, or empty for none (null). */
  optionalInt: (min: number, max: number) =>
    z.preprocess(
      blankToNull,
      wholeNumber(
        z
          .number({ message: 'Enter a whole number, or leave it empty.' })
          .int('Enter a whole number, or leave it empty.')
          .min(min, `At least ${min}.`)
          .max(max, `At most ${max}.`)
          .nullable(),
      ),
    ),
  /** The id of a related row, in its table's range (`max`: MAX_BIG_ID for a bigint id). */
  relation: (max = MAX_ID) =>
    wholeNumber(z.number({ message: 'Choose one.' }).int('Choose one.').min(1, 'Choose one.').max(max, 'Choose one.')),
  optionalRelation: (max = MAX_ID) =>
    z.preprocess(
      blankToNull,
      wholeNumber(
        z
          .number({ message: 'Enter an id, or leave it empty.' })
          .int('Enter an id, or leave it empty.')
          .min(1, 'Enter an id, or leave it empty.')
          .max(max, 'Enter an id, or leave it empty.')
          .nullable(),
      ),
    ),
  choice: <T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { message: `Choose one of: ${values.join(', ')}.` }),
  optionalChoice: <T extends readonly [string, ...string[]]>(values: T) => z.preprocess(blankToNull, z.enum(values).nullable()),
  hostname: () =>
    z
      .string()
      .trim()
      .min(1, 'This field is required.')
      .max(253, 'At most 253 characters.')
      .regex(HOST_NAME, 'Enter a host name such as db-1.example.com.'),
  /** Where to connect: a host name, an IPv4 or IPv6 address, or empty (then the host name). */
  address: () =>
    z
      .string()
      .trim()
      .max(253, 'At most 253 characters.')
      .refine(
        (v) => v === '' || HOST_NAME.test(v) || isIP(v) !== 0,
        'Enter a host name or an IP address (such as 10.0.0.5), or leave it empty.',
      )
      .default(''),
  /** A REST API's address, nothing else (Patroni's: https://db-1.example.com:8008), or empty. */
  restUrl: () =>
    z
      .string()
      .trim()
      .max(300, 'At most 300 characters.')
      .refine((v) => {
        if (v === '') return true;
        // https only: the credentials go over TLS verified against the environment's CA.
        const m = /^https:\/\/([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(v);
        return (
          !!m &&
          (HOST_NAME.test(m[1] ?? '') || isIP(m[1] ?? '') === 4) &&
          (m[2] === undefined || (Number(m[2]) >= 1 && Number(m[2]) <= 65535))
        );
      }, 'Enter an address such as https://db-1.example.com:8008 (no path), or leave it empty.')
      .default(''),
  /** An OS user name as useradd accepts it (an SSH login). */
  osUser: () =>
    z
      .string()
      .trim()
      .min(1, 'This field is required.')
      .max(32, 'At most 32 characters.')
      .regex(/^[a-z_][a-z0-9_.-]*$/i, 'Enter a user name: letters, digits and _ . - (the first a letter or _).'),
  /**
   * An absolute path such as a data directory: letters, digits and . _ - + @ / only, no '..'.
   * Quoting at use would make any path safe; refusing the odd ones at input keeps them readable too.
   */
  path: () =>
    z
      .string()
      .trim()
      .max(500, 'At most 500 characters.')
      .refine(
        (v) => v === '' || (/^\/[A-Za-z0-9._@+/-]*$/.test(v) && !v.split('/').includes('..')),
        'Enter an absolute path (letters, digits and . _ - + @ / only), for example /var/lib/postgresql/15/main.',
      )
      .default(''),
  optionalText: (max = 200) =>
    z.preprocess(blankToNull, z.string().trim().max(max, `At most ${max} characters.`).refine(isPlainName, NO_TRICKS).nullable()),
};

/** The enum's values when drizzle-zod made the column a z.enum (possibly nullable or optional). */
function enumValues(s: z.ZodType): [string, ...string[]] | null {
  let inner: z.core.$ZodType = s;
  while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) inner = inner.unwrap();
  if (!(inner instanceof z.ZodEnum)) return null;
  const [first, ...rest] = inner.options.map(String);
  return first === undefined ? null : [first, ...rest];
}

/** The field's checks and input as the column implies them, where the declaration does not give them. */
function derive(
  table: string,
  key: string,
  column: Column,
  derived: z.ZodType,
  decl: FieldDecl,
  refersElsewhere: boolean,
): { schema: z.ZodType; input: InputSpec } {
  const what = `${table}.${key}`;
  const nullable = !column.notNull;
  if (refersElsewhere) {
    if (!decl.references) throw new Error(`${what} refers to another table: its field must name the model it refers to (references)`);
    const max = maxIdOfType(column.getSQLType());
    return { schema: decl.schema ?? (nullable ? f.optionalRelation(max) : f.relation(max)), input: decl.input ?? { type: 'relation' } };
  }
  const choices = enumValues(derived);
  if (choices)
    return {
      schema: decl.schema ?? (nullable ? f.optionalChoice(choices) : f.choice(choices)),
      input: decl.input ?? { type: 'select', choices, optional: nullable },
    };
  if (decl.schema) return { schema: decl.schema, input: decl.input ?? { type: column.dataType === 'number' ? 'number' : 'text' } };
  if (column.dataType === 'string') {
    // Text the table says little about: required when it has no default, empty-as-null when it may be null.
    const schema = nullable ? f.optionalText() : column.hasDefault ? f.text() : f.name();
    return { schema, input: decl.input ?? { type: 'text' } };
  }
  throw new Error(`${what} (${column.dataType}): the table cannot say what a valid value is; declare its schema`);
}

/**
 * The form of `table` with the fields declared, in their order. Keys are the table's columns (the
 * compiler refuses any other); `check` adds rules across fields (a group is named by its DN).
 */
export function tableForm<T extends PgTable, M extends Referenced>(
  table: T,
  decls: Partial<Record<ColumnKey<T>, FieldDecl<M>>>,
  check?: (values: Record<string, unknown>, ctx: z.RefinementCtx) => void,
): ModelForm<M> {
  const columns: Record<string, Column> = getTableColumns(table);
  const config = getTableConfig(table);
  const foreign = new Set(config.foreignKeys.flatMap((fk) => fk.reference().columns.map((c) => c.name)));
  const derivedShape: Record<string, z.ZodType> = createInsertSchema(table).shape;
  const shape: Record<string, z.ZodType> = {};
  const fields: FormField<M>[] = [];
  for (const [key, decl] of Object.entries<FieldDecl<M> | undefined>(decls)) {
    const column = columns[key];
    const derived = derivedShape[key];
    if (!column || !derived || !decl) throw new Error(`${config.name}.${key} is not a column of the table`);
    const { schema, input } = derive(config.name, key, column, derived, decl, foreign.has(column.name));
    shape[key] = schema;
    fields.push({
      name: key,
      label: decl.label,
      ...(decl.help ? { help: decl.help } : {}),
      input,
      ...(decl.references ? { references: decl.references } : {}),
    });
  }
  const object = z.object(shape);
  return { schema: check ? object.superRefine(check) : object, fields };
}

/** The fields as the page draws them: plain data (no schema, no model), safe to send to the browser. */
export const fieldViews = (form: ModelForm): FieldView[] =>
  form.fields.map(({ name, label, help, input }) => ({ name, label, ...(help ? { help } : {}), input }));
