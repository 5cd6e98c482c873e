// How tests see a refusal: the domain code (lib/features/admin, lib/engine) throws AccessDenied and records
// nothing; the boundary that answers the user (console, API, worker) records it, once.
import type { Db } from '@/db/client';
import { AccessDenied, answeringDenial, type Requester } from '@/lib/engine/access';

/** The message of the AccessDenied that `p` rejects with; anything else fails the test. */
export const refusal = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => {
      throw new Error('not refused');
    },
    (err: unknown) => {
      if (!(err instanceof AccessDenied)) throw err;
      return err.message;
    },
  );

/** Runs `fn` as a boundary does (answeringDenial, which records the refusal): the refusal's message. */
export const refusedAtBoundary = (db: Db, who: Requester, fn: () => Promise<unknown>): Promise<string> =>
  answeringDenial(
    db,
    who,
    async () => {
      await fn();
      return 'not refused';
    },
    (err) => err.message,
  );
