// How a test waits, and the lab's start-up too: for an event, with a deadline (waitFor), or, when no
// event can prove that something did not happen, through a window watched as it goes (observeFor).
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

/**
 * Watches for `ms` that `holds` stays true, asking it every 50 ms and once more at the end; fails at
 * the first answer of false (or the first error it throws, an `expect` for one), not at the window's
 * end.
 *
 * Only for what no event can prove. "Nothing happened" is best shown by waiting (waitFor) for something
 * that would have come after it: the worker's log line, the next step's record, a row's state, or a
 * round of the loop that would have acted, run by the test itself. A window is left for a timer of
 * another system's that says nothing while it does nothing (Patroni's loop, a worker in another
 * process); its length comes from that timer, and `what` says which.
 */
export async function observeFor(ms: number, what: string, holds: () => Promise<boolean> | boolean): Promise<void> {
  const start = Date.now();
  for (;;) {
    const elapsed = Date.now() - start;
    if (!(await holds())) throw new Error(`${what}: not so any more, ${String(elapsed)} ms into a window of ${String(ms)} ms`);
    if (elapsed >= ms) return;
    await sleep(Math.min(50, ms - elapsed));
  }
}
