// Client-safe form declarations: zod schemas plus what the generic form needs to draw each field.
import { z } from 'zod';
import { isPlainName, isPlainText, NO_TRICKS } from '@/lib/validation/text';
import { MAX_ID } from '@/lib/validation/ids';
import '@/lib/validation/messages';

export type InputSpec =
  | { type: 'text'; placeholder?: string }
  | { type: 'textarea' }
  | { type: 'number' }
  | { type: 'select'; choices: readonly string[]; optional?: boolean }
  | { type: 'relation'; model: string; optional?: boolean };

export interface FormField<K extends string = string> {
  name: K;
  label: string;
  help?: string;
  input: InputSpec;
  /** The model an id typed as a number refers to (a relation input knows its model already): the save path checks the row it names. */
  references?: string;
}

/** The model a field's value is an id of, if any: every such row is checked where it is saved. */
export const referencedModel = (f: FormField): string | undefined => (f.input.type === 'relation' ? f.input.model : f.references);

export interface FormSpec<S extends z.ZodObject = z.ZodObject> {
  schema: S;
  fields: FormField<Extract<keyof z.infer<S>, string>>[];
}

export function defineForm<S extends z.ZodObject>(spec: FormSpec<S>): FormSpec<S> {
  return spec;
}

const blankToNull = (v: unknown) => (v === '' || v === undefined ? null : v);

const tricky = (v: string) => !isPlainText(v);

export const f = {
  /** Required text, trimmed; stored exactly as typed otherwise (HTML and quotes are data), but no control or direction characters. */
  name: (max = 100) => z.string().trim().min(1, 'This field is required.').max(max, `At most ${max} characters.`)
    .refine(isPlainName, NO_TRICKS),
  text: (max = 2000) => z.string().trim().max(max, `At most ${max} characters.`).refine((v) => !tricky(v), NO_TRICKS).default(''),
  int: (min: number, max: number) =>
    z.coerce.number({ message: 'Enter a whole number.' }).int('Enter a whole number.').min(min, `At least ${min}.`).max(max, `At most ${max}.`),
  relation: () => z.coerce.number({ message: 'Choose one.' }).int('Choose one.').min(1, 'Choose one.').max(MAX_ID, 'Choose one.'),
  optionalRelation: () => z.preprocess(blankToNull, z.coerce.number({ message: 'Enter an id, or leave it empty.' }).int('Enter an id, or leave it empty.').min(1, 'Enter an id, or leave it empty.').max(MAX_ID, 'Enter an id, or leave it empty.').nullable()),
  choice: <T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { message: `Choose one of: ${values.join(', ')}.` }),
  optionalChoice: <T extends readonly [string, ...string[]]>(values: T) => z.preprocess(blankToNull, z.enum(values).nullable()),
  hostname: () =>
    z.string().trim().min(1, 'This field is required.').max(253, 'At most 253 characters.')
      .regex(/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, 'Enter a host name such as db-1.example.com.'),
  /**
   * An absolute path such as a data directory: letters, digits and . _ - + @ / only, no '..'.
   * Quoting at use would make any path safe; refusing the odd ones at input keeps them readable too.
   */
  path: () =>
    z.string().trim().max(500, 'At most 500 characters.')
      .refine((v) => v === '' || (/^\/[A-Za-z0-9._@+/-]*$/.test(v) && !v.split('/').includes('..')), 'Enter an absolute path (letters, digits and . _ - + @ / only), for example /var/lib/postgresql/15/main.')
      .default(''),
  optionalText: (max = 200) => z.preprocess(blankToNull, z.string().trim().max(max, `At most ${max} characters.`)
    .refine(isPlainName, NO_TRICKS).nullable()),
};
