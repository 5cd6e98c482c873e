// Steps of the actions that go through Patroni on a herd it runs (issue 18): a pre-flight that changes
// nothing (the member has a REST address, its environment has credentials, Patroni takes them), and a
// REST call whose answer is recorded. What the action then checks is the observed state (Postgres and
// Patroni's /cluster), never the HTTP status alone.
import type { ActionStep } from '@/lib/ops/define-action';
import type { InstanceRef } from '@/lib/ops/instance-ref';
import { checkCredentials, PatroniError, type PatroniAccess } from './client';
import { patroniAccessFor } from './view';

/** Waits `ms`, or rejects as soon as the step is stopped (its signal aborted). */
export const sleepUnlessStopped = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    });
  });

/** The member's REST address and its environment's credentials, or an error saying which is missing. */
export function patroniEndpoint(t: InstanceRef): { url: string; access: PatroniAccess } {
  if (!t.patroniUrl) throw new Error(`${t.label} has no Patroni REST address: set it on the instance (Patroni REST address)`);
  const access = patroniAccessFor(t.serverEnvironment);
  if (!access?.password)
    throw new Error(`no Patroni REST credentials for environment ${t.serverEnvironment}: add "patroni" to its entry in PGHERD_PG_CONFIG`);
  return { url: t.patroniUrl, access };
}

/** Pre-flight: Patroni answers at the member's address and takes pgherd's credentials; nothing is changed. */
export function patroniPreflightStep<S>(t: InstanceRef): ActionStep<S> {
  return {
    name: "check Patroni's REST API",
    says: `check that ${t.patroniUrl || '(no REST address)'} answers and takes pgherd's credentials (changes nothing)`,
    timeoutMs: 15_000,
    run: async (x) => {
      const { url, access } = patroniEndpoint(t);
      try {
        await checkCredentials(url, access);
      } catch (err) {
        throw new Error(`pre-flight: ${err instanceof PatroniError ? err.message : String(err)}; nothing was changed`);
      }
      x.note({ stdout: `${url} answers and takes the credentials` });
    },
  };
}

/** A REST call to the member's Patroni (`call` gets its address and access), its answer recorded. */
export function patroniCallStep<S>(
  t: InstanceRef,
  name: string,
  says: string,
  call: (url: string, access: PatroniAccess, state: S) => Promise<string>,
  timeoutMs = 90_000,
): ActionStep<S> {
  return {
    name,
    says,
    timeoutMs,
    run: async (x) => {
      const { url, access } = patroniEndpoint(t);
      x.note({ command: `${says} (${url})` });
      const answer = await call(url, access, x.state);
      x.note({ stdout: `Patroni answered: ${answer}` });
    },
  };
}
