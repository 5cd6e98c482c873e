// pg_hba on a herd Patroni runs: Patroni writes it on every member from its configuration, so pgherd
// changes that (PATCH /config {postgresql: {pg_hba}}) and waits until every member runs the new rules;
// what it replaced is put back the same way should a member not take them. A member whose own patroni.yml
// sets postgresql.pg_hba keeps its own lines (Patroni's local configuration wins): the wait says so.
import { getConfig, patchConfig, PatroniError } from '@/lib/adapters/patroni/client';
import type { ActionStep } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { readHbaRules } from '@/lib/fleet/objects/read-objects';
import type { AccessRulesPlane } from '../access-rules';
import { patroniEndpoint, sleepUnlessStopped } from './steps';

const WAIT_MS = 90_000;

export const patroniAccessRules: AccessRulesPlane = {
  runBy: "Patroni: pgherd changes Patroni's configuration (postgresql.pg_hba) and Patroni writes it on every member",
  write: <S>(members: InstanceRef[], primary: InstanceRef, w: Parameters<AccessRulesPlane['write']>[2]) => {
    let before: unknown = undefined;
    const step: ActionStep<S> = {
      name: "change Patroni's pg_hba",
      does: { kind: 'objects.hba-patroni', patroni: primary.patroniUrl, scope: primary.patroniScope, lines: w.lines },
      says: `PATCH /config {postgresql: {pg_hba: [${w.lines.length} lines]}} through ${primary.label}'s Patroni; wait until ${members.map((m) => m.label).join(', ')} run them`,
      timeoutMs: WAIT_MS + 30_000,
      always: {
        name: "put Patroni's pg_hba back unless every member took the new one",
        does: { kind: 'objects.hba-patroni-restore', patroni: primary.patroniUrl },
        says: "should a member not take the new pg_hba: Patroni's pg_hba put back as it was",
        whileHeld: true,
        run: async (x) => {
          if (w.kept(x) || before === undefined) return;
          const { url, access } = patroniEndpoint(primary);
          await patchConfig(url, access, { postgresql: { pg_hba: before ?? null } });
          x.note({ stdout: "Patroni's pg_hba as it was" });
        },
      },
      run: async (x) => {
        const { url, access } = patroniEndpoint(primary);
        try {
          const now = await getConfig(url, access);
          before = (now.postgresql as { pg_hba?: unknown } | undefined)?.pg_hba ?? null;
          x.note({ command: `PATCH ${url}/config {"postgresql":{"pg_hba":[${w.lines.length} lines]}}` });
          await patchConfig(url, access, { postgresql: { pg_hba: w.lines } });
        } catch (err) {
          throw err instanceof PatroniError ? new Error(`Patroni refused the change: ${err.message}`) : err;
        }
        const want = JSON.stringify(w.rules);
        const deadline = Date.now() + WAIT_MS;
        for (;;) {
          const behind: string[] = [];
          for (const m of members) {
            const rules = await readHbaRules(m).catch(() => null);
            if (!rules || JSON.stringify(rules) !== want) behind.push(m.label);
          }
          if (!behind.length) break;
          if (Date.now() > deadline)
            throw new Error(
              `${behind.join(', ')} do not run the new pg_hba ${WAIT_MS / 1000} s after Patroni took it (does its patroni.yml set postgresql.pg_hba? a member's own configuration wins over Patroni's shared one)`,
            );
          await sleepUnlessStopped(1000, x.signal);
        }
        x.note({ stdout: `every member runs the new pg_hba (${w.lines.length} lines)` });
      },
    };
    return [step];
  },
};
