// Steps of the actions that go through Patroni on a herd it runs (issue 18): a pre-flight that changes
// nothing (the member has a REST address, its environment has credentials, Patroni takes them), and a
// REST call whose answer is recorded. What the action then checks is the observed state (Postgres and
// Patroni's /cluster), never the HTTP status alone.
import type { ActionStep } from '@/lib/ops/define-action';
import type { InstanceRef } from '@/lib/ops/instance-ref';
import { checkCredentials, getCluster, getMemberStatus, PatroniError, type PatroniAccess } from './client';
import { isInstance, patroniAccessFor } from './view';

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

/** Whether two URLs have the same scheme, host and port (Patroni's api_url ends in /patroni). */
function sameOrigin(a: string | null | undefined, b: string): boolean {
  try {
    return !!a && new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/**
 * That the Patroni at `url` runs `t`: its scope is the herd's, its Postgres the herd's (system
 * identifier, when both are known), and the member it says it is sits at `t`'s address and port in
 * its own /cluster. A REST address pointing elsewhere (a mistake, or a forged report) is refused
 * before anything is asked of it. Returns Patroni's name of the member.
 */
export async function verifyMember(t: InstanceRef, url: string, access: PatroniAccess): Promise<string> {
  if (!t.patroniScope)
    throw new Error(
      `the herd of ${t.label} has no Patroni scope: set it on the herd (patroni.yml's scope) so that pgherd can tell its Patroni from another`,
    );
  const st = await getMemberStatus(url, access);
  if (st.patroni.scope !== t.patroniScope)
    throw new Error(
      `${url} runs Patroni for cluster "${st.patroni.scope}", not this herd's "${t.patroniScope}": check ${t.label}'s Patroni REST address`,
    );
  if (t.herdSystemIdentifier && st.database_system_identifier && st.database_system_identifier !== t.herdSystemIdentifier)
    throw new Error(
      `${url} runs a Postgres of another system (${st.database_system_identifier}) than the herd's (${t.herdSystemIdentifier})`,
    );
  // Which member answers at `url`: the one its cluster lists with that REST address (Patroni 3.0's /patroni
  // gives no name; later ones do).
  const members = (await getCluster(url, access)).members;
  const me = members.find((m) => sameOrigin(m.api_url, url)) ?? members.find((m) => m.name === st.patroni.name);
  if (!me) throw new Error(`${url}: its Patroni lists no member with this REST address: check ${t.label}'s Patroni REST address`);
  if (!isInstance(me, t))
    throw new Error(
      `${url} is Patroni member ${me.name} at ${me.host ?? '?'}:${String(me.port ?? '?')}, not ${t.label}: check its Patroni REST address`,
    );
  return me.name;
}

/** Pre-flight: Patroni answers at the member's address, runs that member, and takes pgherd's credentials; nothing is changed. */
export function patroniPreflightStep<S>(t: InstanceRef): ActionStep<S> {
  return {
    name: "check Patroni's REST API",
    says: `check that ${t.patroniUrl || '(no REST address)'} is ${t.label}'s Patroni and takes pgherd's credentials (changes nothing)`,
    timeoutMs: 15_000,
    run: async (x) => {
      const { url, access } = patroniEndpoint(t);
      let name: string;
      try {
        name = await verifyMember(t, url, access);
        await checkCredentials(url, access);
      } catch (err) {
        throw new Error(`pre-flight: ${err instanceof PatroniError ? err.message : String(err)}; nothing was changed`);
      }
      x.note({ stdout: `${url} is Patroni member ${name} of ${t.patroniScope}, and takes the credentials` });
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
