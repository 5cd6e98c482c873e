// Errors as text, for a step's record or a message: what was thrown, whatever it was.
import { inspect } from 'node:util';

/** How much of a failed statement's text is kept beside its cause. */
const QUERY_SHOWN = 120;

/**
 * The message of an Error, else the thrown value as a string. A statement drizzle ran that failed says
 * why first (the driver's error, on `cause`), then the statement's beginning: its own message is the
 * whole statement and its parameters (a refresh's batch: megabytes), with no reason.
 */
export function errorText(err: unknown): string {
  if (err instanceof Error && err.message.startsWith('Failed query: ') && err.cause instanceof Error) {
    const q = err.message.slice('Failed query: '.length).split('\nparams:')[0]?.replace(/\s+/g, ' ').trim() ?? '';
    return `${err.cause.message} (in: ${q.length > QUERY_SHOWN ? `${q.slice(0, QUERY_SHOWN)}\u2026` : q})`;
  }
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : inspect(err, { depth: 2, breakLength: Infinity });
}
