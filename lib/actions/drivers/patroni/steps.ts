// Steps of the actions that go through Patroni on a herd it runs: a pre-flight that changes nothing
// (the member has a REST address on its own server, the member's peers confirm it is its Patroni's,
// its environment has credentials, Patroni takes them), and a REST call whose answer is recorded. What the action then checks is the observed state (Postgres and
// Patroni's /cluster), never the HTTP status alone.
import type { ActionStep } from '@/lib/engine/define-action';
import { memberArg, type Arg } from '@/lib/engine/plan-identity';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { checkCredentials, getCluster, getMemberStatus, PatroniError, type PatroniAccess } from '@/lib/adapters/patroni/client';
import { restUrlProblem } from '@/lib/adapters/patroni/rest-url';
import { isInstance, patroniAccessFor } from '@/lib/fleet/patroni-view';

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
  const problem = restUrlProblem(t.patroniUrl, t.host);
  if (problem) throw new Error(`${t.label}'s Patroni REST address is refused: ${problem}`);
  const access = patroniAccessFor(t.serverEnvironment);
  if (!access?.password)
    throw new Error(`no Patroni REST credentials for environment ${t.serverEnvironment}: add "patroni" to its entry in PGHERD_PG_CONFIG`);
  return { url: t.patroniUrl, access: { ...access, host: t.host } };
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
 * What `t`'s peers' Patroni say its REST address is: each peer with an address of its own server is
 * asked for /cluster (no credentials), and the member listed at `t`'s address and port must have
 * `url`'s origin as its api_url. TLS proves the host, not the port: anything listening on another
 * port of the member's server with a certificate for it would pass every check asked of `url`
 * itself, and it cannot make the other members' Patroni say so. Null when confirmed, else why not.
 */
export async function peerProblem(t: InstanceRef, url: string, peers: InstanceRef[]): Promise<string | null> {
  const said = await peersSay(t, url, peers);
  // Unconfirmed is refused too, even when no other member answers: an admin can empty the other
  // members' addresses, or point them at ports where nothing answers, and the certificate alone does
  // not prove the port. A herd whose other Patroni members are all gone is failed over with patronictl.
  return 'confirmed' in said ? null : said.problem;
}

/** What the peers say of `url` (see peerProblem): confirmed, contradicted by one, or unconfirmed. */
export async function peersSay(
  t: Pick<InstanceRef, 'id' | 'herd' | 'label' | 'port' | 'address' | 'hostname' | 'host'>,
  url: string,
  peers: Pick<InstanceRef, 'id' | 'label' | 'patroniUrl' | 'host' | 'serverEnvironment'>[],
): Promise<{ confirmed: true } | { problem: string; contradicted: boolean; nobodyAnswered: boolean }> {
  const others = peers.filter((p) => p.id !== t.id && p.patroniUrl !== '' && restUrlProblem(p.patroniUrl, p.host) === null);
  if (!others.length)
    return {
      problem: `no other member of ${t.herd} has a Patroni REST address to confirm ${url} with`,
      contradicted: false,
      nobodyAnswered: true,
    };
  const said = await Promise.all(
    others.map(async (p) => {
      try {
        const listed = (await getCluster(p.patroniUrl, { caFile: patroniAccessFor(p.serverEnvironment)?.caFile ?? null })).members.find(
          (m) => isInstance(m, t),
        );
        return { p, apiUrl: listed ? (listed.api_url ?? '') : null, error: null };
      } catch (err) {
        return { p, apiUrl: null, error: err instanceof PatroniError ? err.message : String(err) };
      }
    }),
  );
  const against = said.find((x) => x.apiUrl !== null && !sameOrigin(x.apiUrl, url));
  if (against)
    return {
      problem: `${against.p.label}'s Patroni lists ${t.label}'s REST API elsewhere than ${url}`,
      contradicted: true,
      nobodyAnswered: false,
    };
  if (said.some((x) => x.apiUrl !== null)) return { confirmed: true };
  return {
    problem: `no other member's Patroni confirms ${url} is ${t.label}'s (${said.map((x) => `${x.p.label}: ${x.error ?? 'does not list it'}`).join('; ')})`,
    contradicted: false,
    nobodyAnswered: said.every((x) => x.error !== null),
  };
}

/**
 * That the Patroni at `url` runs `t`: its scope is the herd's, its Postgres the herd's (system
 * identifier, when both are known), and the member it says it is sits at `t`'s address and port in
 * its own /cluster. A REST address pointing elsewhere (a mistake, or a forged report) is refused
 * before anything is asked of it. Returns Patroni's name of the member.
 */
export async function verifyMember(t: InstanceRef, url: string, access: PatroniAccess, peers: InstanceRef[]): Promise<string> {
  if (!t.patroniScope)
    throw new Error(
      `the herd of ${t.label} has no Patroni scope: set it on the herd (patroni.yml's scope) so that pgherd can tell its Patroni from another`,
    );
  const st = await getMemberStatus(url, access);
  if (st.patroni.scope !== t.patroniScope)
    // What the address said is not repeated: an address is not a way to show people arbitrary text.
    throw new Error(
      `${url} runs Patroni for another cluster than this herd's "${t.patroniScope}": check ${t.label}'s Patroni REST address`,
    );
  if (t.herdSystemIdentifier && st.database_system_identifier && st.database_system_identifier !== t.herdSystemIdentifier)
    throw new Error(`${url} runs a Postgres of another system than the herd's (${t.herdSystemIdentifier})`);
  // Which member answers at `url`: the one its cluster lists with that REST address (Patroni 3.0's /patroni
  // gives no name; later ones do).
  const members = (await getCluster(url, access)).members;
  const me = members.find((m) => sameOrigin(m.api_url, url)) ?? members.find((m) => m.name === st.patroni.name);
  if (!me) throw new Error(`${url}: its Patroni lists no member with this REST address: check ${t.label}'s Patroni REST address`);
  if (!isInstance(me, t))
    throw new Error(
      `${url} is another Patroni member than ${t.label} (its /cluster lists it at another address or port): check its Patroni REST address`,
    );
  const peer = await peerProblem(t, url, peers);
  if (peer) throw new Error(`${peer}: check ${t.label}'s Patroni REST address`);
  return me.name;
}

/** A member's Patroni in a step's arguments: the member, its REST address and its herd's scope. */
export const patroniArg = (t: InstanceRef) => ({ instance: memberArg(t), url: t.patroniUrl, scope: t.patroniScope });

/** Pre-flight: Patroni answers at the member's address, runs that member, and takes pgherd's credentials; nothing is changed. */
export function patroniPreflightStep<S>(t: InstanceRef): ActionStep<S> {
  return {
    name: "check Patroni's REST API",
    does: { kind: 'patroni.check-member', patroni: patroniArg(t) },
    says: `check that ${t.patroniUrl || '(no REST address)'} is ${t.label}'s Patroni and takes pgherd's credentials (changes nothing)`,
    timeoutMs: 15_000,
    run: async (x) => {
      let name: string;
      let url = t.patroniUrl;
      try {
        const endpoint = patroniEndpoint(t);
        url = endpoint.url;
        const peers = await loadInstanceRefs(x.deps.db, [], { herdIds: [t.herdId] });
        name = await verifyMember(t, url, endpoint.access, peers);
        await checkCredentials(url, endpoint.access);
      } catch (err) {
        throw new Error(`pre-flight: ${err instanceof PatroniError ? err.message : (err as Error).message}; nothing was changed`);
      }
      x.note({ stdout: `${url} is Patroni member ${name} of ${t.patroniScope}, and takes the credentials` });
    },
  };
}

/**
 * A REST call to the member's Patroni (`call` gets its address and access), its answer recorded.
 * `request`: what it asks (`POST /restart`) and the request's own arguments.
 */
export function patroniCallStep<S>(
  t: InstanceRef,
  name: string,
  request: { call: string; [arg: string]: Arg },
  says: string,
  call: (url: string, access: PatroniAccess, state: S) => Promise<string>,
  timeoutMs = 90_000,
): ActionStep<S> {
  return {
    name,
    does: { kind: 'patroni.call', patroni: patroniArg(t), ...request },
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
