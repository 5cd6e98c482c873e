// Errors as text, for a step's record or a message: what was thrown, whatever it was.
import { inspect } from 'node:util';

/** The message of an Error, else the thrown value as a string. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : inspect(err, { depth: 2, breakLength: Infinity });
}
