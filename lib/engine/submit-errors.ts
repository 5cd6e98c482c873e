// Why a plan or a submit was not taken, said once: the API answers { error, details } with `status`,
// the console's confirmation form reads `code`. Nobody maps the kinds by hand.

export type SubmitErrorCode =
  'stale' | 'mistyped' | 'nothing' | 'wrong-targets' | 'params' | 'waves' | 'state' | 'rule' | 'not-found' | 'break-glass';

export class SubmitError extends Error {
  constructor(
    readonly code: SubmitErrorCode,
    readonly status: 400 | 403 | 404 | 409,
    message: string,
    /** The API's `details`: what a client needs to try again (the new digest, the text to type). */
    readonly details: Record<string, unknown> | readonly unknown[] | null = null,
    /** The API's `error`, when the message itself goes into the details. */
    readonly summary: string = message,
  ) {
    super(message);
    this.name = 'SubmitError';
  }
}
