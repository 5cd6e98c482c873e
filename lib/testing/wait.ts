// How a test waits, and the lab's start-up too: for an event, with a deadline.
import { sleep, throwIfCancelled } from '@/lib/lab/proc';

/** What `fn` gives while the thing waited for is not there yet. */
type NotYet = undefined | null | false;

/**
 * Asks `fn` every 50 ms until it gives something other than undefined, null or false, and returns
 * that: the state a test asserts (a row, a log line, a process gone), as soon as it is there. An error
 * thrown by `fn` counts as not yet (a server still starting refuses connections) and is named in the
 * error thrown at the deadline, with `what`. In the lab's cancellable start-up a cancel ends the wait
 * at its next question.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | NotYet> | T | NotYet, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    throwIfCancelled();
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(50);
  }
}
