'use client';

import { useSyncExternalStore } from 'react';

const never = () => () => {};

/**
 * False in the server's HTML and until React has taken over the page in the browser, true after.
 * A form whose submit is JavaScript's (react-hook-form's handleSubmit) keeps its buttons disabled
 * until then: clicked before, the browser would submit it itself, as a GET to the page's own
 * address, with every field (a password too) in the URL, and nothing pgherd meant would happen.
 */
export function useHydrated(): boolean {
  return useSyncExternalStore(
    never,
    () => true,
    () => false,
  );
}
