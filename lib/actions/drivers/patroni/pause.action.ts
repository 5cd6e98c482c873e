// Patroni's maintenance mode on a herd it runs: pause (Patroni stops failing over on its own, and
// leaves Postgres to whoever acts on it) and resume. Asked of any member's REST API (the setting is the
// cluster's, in the DCS: PATCH /config {"pause": ...}); done once /cluster says so.
import { checkCredentials, PatroniError, setPaused, type PatroniAccess } from '@/lib/adapters/patroni/client';
import { patroniEndpoint, sleepUnlessStopped, verifyMember } from '@/lib/actions/drivers/patroni/steps';
import { patroniNow } from '@/lib/fleet/patroni-view';
import { defineHerdAction, productionWarning, type HerdAction } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { refuse } from '@/lib/fleet/refusal';
import { asks } from '@/lib/actions/drivers';

interface PauseState {
  /** The member whose REST API answered the pre-flight, and its access. */
  url?: string;
  access?: PatroniAccess;
}

function pauseAction(paused: boolean): HerdAction {
  const verb = paused ? 'pause' : 'resume';
  return defineHerdAction({
    name: paused ? 'patroni-pause' : 'patroni-resume',
    control: asks('pause'),
    label: paused ? 'Pause Patroni (maintenance mode)' : 'Resume Patroni',
    // Turning a herd's automatic failover off and on is an admin's act.
    permission: 'admin',
    dangerous: paused,
    state: (): PauseState => ({}),
    plan: (h: HerdRef) => {
      // Another driver's herd was refused in its own words (it lacks `pause`).
      if (!h.members.length) return refuse('not-applicable', `${verb} is for a herd Patroni runs: this herd has no members`);
      const withUrl = h.members.filter((m) => m.patroniUrl);
      if (!withUrl.length) return refuse('not-applicable', "no member has a Patroni REST address: set one on an instance's form");
      return {
        steps: [
          {
            name: "check Patroni's REST API",
            does: { kind: 'patroni.find-member', urls: withUrl.map((m) => m.patroniUrl) },
            says: `find a member whose Patroni answers and takes pgherd's credentials (${withUrl.map((m) => m.patroniUrl).join(', ')}; changes nothing)`,
            timeoutMs: 30_000,
            run: async (x) => {
              const problems: string[] = [];
              for (const m of withUrl) {
                try {
                  const { url, access } = patroniEndpoint(m);
                  await verifyMember(m, url, access, h.members);
                  await checkCredentials(url, access);
                  Object.assign(x.state, { url, access });
                  x.note({ stdout: `${url} answers and takes the credentials` });
                  return;
                } catch (err) {
                  problems.push(`${m.label}: ${err instanceof PatroniError ? err.message : (err as Error).message}`);
                }
              }
              throw new Error(`pre-flight: no member's Patroni took the request (${problems.join('; ')}); nothing was changed`);
            },
          },
          {
            name: verb,
            does: { kind: 'patroni.call', call: 'PATCH /config', pause: paused },
            says: paused
              ? 'ask Patroni to pause the cluster (PATCH /config {"pause": true}): it will not fail over on its own until resumed'
              : 'ask Patroni to resume the cluster (PATCH /config {"pause": false}): it fails over on its own again',
            timeoutMs: 20_000,
            run: async (x) => {
              const { url, access } = x.state;
              if (!url || !access) throw new Error('the pre-flight found no member to ask');
              x.note({ command: `PATCH ${url}/config {"pause": ${String(paused)}}` });
              await setPaused(url, access, paused);
            },
          },
          {
            name: `wait until ${paused ? 'paused' : 'resumed'}`,
            does: { kind: 'patroni.wait-paused', paused },
            says: `wait until Patroni's /cluster says the cluster is ${paused ? 'paused' : 'no longer paused'}`,
            timeoutMs: 30_000,
            run: async (x) => {
              for (;;) {
                const now = await patroniNow(h.members);
                if (now.askedOf && now.paused === paused) {
                  x.note({ stdout: `${now.askedOf}: ${paused ? 'paused' : 'not paused'}; leader ${now.leader ?? 'none'}` });
                  return;
                }
                await sleepUnlessStopped(500, x.signal);
              }
            },
          },
        ],
        warnings: [
          ...productionWarning(h),
          ...(paused ? ['While paused, Patroni does not fail over on its own: a dead primary stays dead until someone acts.'] : []),
        ],
      };
    },
  });
}

export const patroniPauseAction = pauseAction(true);
export const patroniResumeAction = pauseAction(false);
