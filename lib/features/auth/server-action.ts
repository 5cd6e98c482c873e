// One shape for the console's server actions: who is acting (signed in, else the sign-in page), the form
// read by its schema, then the work. A form that does not read changes nothing: a plain form's action
// answers not found (pgherd's pages make no such form: malformed), a form-state action its errors by field.
import type { z } from 'zod';
import type { SignedInActor } from '@/lib/engine/access';
import { currentActor } from './actor';
import { malformed } from './session';

/** A form's fields as zod reads them (a field given twice: its last value). */
export const formEntries = (form: FormData): Record<string, FormDataEntryValue> => Object.fromEntries(form.entries());

/** The first message of each field of a form that does not read, keyed by `key` of the issue's path (its first part). */
export function fieldErrors(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  key: (path: readonly PropertyKey[]) => string = (p) => String(p[0] ?? 'form'),
): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const i of issues) errors[key(i.path)] ??= i.message;
  return errors;
}

/** A plain form's action: `run` with who is acting and the form as `schema` reads it (`read` picks the fields; all by default). */
export function formAction<S extends z.ZodType, R>(
  schema: S,
  run: (who: SignedInActor, input: z.output<S>) => Promise<R>,
  read: (form: FormData) => unknown = formEntries,
): (form: FormData) => Promise<R> {
  return async (form) => {
    const who = await currentActor();
    const parsed = schema.safeParse(read(form));
    if (!parsed.success) malformed();
    return run(who, parsed.data);
  };
}

/** A form-state action (React's useActionState): as formAction, and a form that does not read answers its errors by field. */
export function stateAction<S extends z.ZodType, State extends { errors?: Record<string, string> }>(
  schema: S,
  run: (who: SignedInActor, input: z.output<S>) => Promise<State>,
  opts: { read?: (form: FormData) => unknown; key?: (path: readonly PropertyKey[]) => string } = {},
): (prev: State, form: FormData) => Promise<State> {
  return async (_prev, form) => {
    const who = await currentActor();
    const parsed = schema.safeParse((opts.read ?? formEntries)(form));
    if (!parsed.success) return { errors: fieldErrors(parsed.error.issues, opts.key) } as State;
    return run(who, parsed.data);
  };
}
