// archive_command on a herd Patroni runs: Patroni owns the herd's settings, so they go through its dynamic
// configuration (PATCH /config), never behind its back; every member then runs the same command.
import { patchConfig } from '@/lib/adapters/patroni/client';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { showSetting } from '@/lib/fleet/show-setting';
import { sharedArchiveCommand } from '@/lib/fleet/backups/pgbackrest';
import type { ArchivingAsk, ArchivingPlan } from '../archiving';
import { patroniArg, patroniEndpoint, patroniPreflightStep, sleepUnlessStopped } from './steps';

/** How long every member may take to run what Patroni took (each applies it on its next loop_wait). */
const APPLIED_WITHIN_MS = 80_000;

export function planPatroniArchiving<S>(h: HerdRef, a: ArchivingAsk<S>): ArchivingPlan<S> | Refusal {
  const leader = h.members.find((m) => m.role === 'primary' && m.patroniUrl);
  if (!leader) return refuse('not-applicable', "no primary of the herd has a Patroni REST address: set one on its instance's form");
  const shared = sharedArchiveCommand(
    h.members.map((m) => m.dataDirectory),
    a.stanza,
  );
  const timeout = `${a.timeoutSeconds}s`;
  return {
    // Patroni is asked first: nothing is written anywhere unless it answers as the herd's.
    before: [patroniPreflightStep<S>(leader)],
    set: {
      name: "set archive_command in Patroni's configuration",
      does: {
        kind: 'patroni.call',
        call: 'PATCH /config',
        stanza: a.stanza,
        archiveTimeout: a.timeoutSeconds,
        patroni: patroniArg(leader),
      },
      says: `ask Patroni to set archive_command (pgbackrest archive-push, stanza ${a.stanza}) and archive_timeout = ${timeout} for every member (PATCH /config postgresql.parameters; archive_mode on where it is off, applied at each member's next restart); wait until every member runs it`,
      timeoutMs: APPLIED_WITHIN_MS + 10_000,
      run: async (x) => {
        const { url, access } = patroniEndpoint(leader);
        const off = h.members.filter((m) => a.modeOff(x, m)).map((m) => m.label);
        const parameters = { archive_command: shared, archive_timeout: timeout, ...(off.length ? { archive_mode: 'on' } : {}) };
        x.note({ command: `PATCH ${url}/config ${JSON.stringify({ postgresql: { parameters } })}` });
        await patchConfig(url, access, { postgresql: { parameters } });
        const deadline = Date.now() + APPLIED_WITHIN_MS;
        for (;;) {
          const behind: string[] = [];
          for (const m of h.members) {
            const got = await showSetting(m, 'archive_command').catch((err: unknown) => `(${(err as Error).message})`);
            if (got !== shared) behind.push(`${m.label}: ${got}`);
          }
          if (!behind.length) break;
          if (Date.now() > deadline || x.signal.aborted)
            throw new Error(`Patroni took the change, and these members do not run it yet: ${behind.join('; ')}`);
          await sleepUnlessStopped(500, x.signal);
        }
        x.note({
          stdout: `every member runs archive_command ${shared}${off.length ? `; archive_mode on at the next restart of ${off.join(', ')}` : ''}`,
        });
      },
    },
  };
}
