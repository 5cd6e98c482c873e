// upgrade-precheck: what would refuse the major upgrade (and what only warns), read from blue's primary.
import { z } from 'zod';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import { defineHerdAction, type ActionPlan } from '@/lib/engine/define-action';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { loadRestoreServer } from '@/lib/actions/steps/restore-steps';
import { versionText } from './minor.action';
import { judge, readBlueFacts } from './blue-facts';
import { asks } from '@/lib/actions/drivers';
import {
  type TargetBuild,
  targetBuild,
  toVersionParam,
  parseTarget,
  primaryOf,
  type PrecheckPrepared,
  readFacts,
  precheckFacts,
} from './major-parts';

const precheckParams = z
  .object({
    toVersion: toVersionParam,
    /** The server green would go on (its build is checked); left out: blue's primary's. */
    serverId: idText('serverId', MAX_ID).optional(),
  })
  .strict();

export const upgradePrecheckAction = defineHerdAction({
  name: 'upgrade-precheck',
  control: asks('upgrade-major'),
  label: 'Pre-check a major upgrade',
  // It changes nothing, but it is an operation: a read-only role runs none.
  permission: 'operator',
  dangerous: false,
  params: {
    schema: precheckParams,
    fields: [
      {
        name: 'toVersion',
        label: 'Target major',
        kind: 'text',
        emptyLabel: '17',
        help: 'A major (its newest build there) or a release, 17.10.',
      },
      {
        name: 'serverId',
        label: 'Green server (id)',
        kind: 'text',
        emptyLabel: "blue's primary's server",
        help: 'Where the target build is looked for.',
      },
    ],
  },
  prepare: async (herdList, params, db): Promise<PrecheckPrepared> => {
    const t = parseTarget(params.toVersion);
    const builds = new Map<number, TargetBuild | null>();
    const other = params.serverId === undefined ? null : await loadRestoreServer(db, params.serverId);
    for (const h of herdList) {
      const p = primaryOf(h);
      const sid = params.serverId ?? (p instanceof Refusal ? null : p.serverId);
      // A server of another environment is none of this herd's business: its builds are not read.
      const foreign = other !== null && other.environmentId !== h.environmentId;
      builds.set(h.id, sid === null || foreign ? null : await targetBuild(db, sid, t.major, t.exact));
    }
    return { facts: await readFacts(herdList), builds };
  },
  plan: (h, { params, prepared }): ActionPlan<Record<string, never>> | Refusal => {
    const f = prepared.facts.get(h.id);
    if (typeof f === 'string' || !f) return refuse('topology', f ?? 'not read');
    const build = prepared.builds.get(h.id);
    if (!build)
      return refuse(
        'not-applicable',
        `no build of ${params.toVersion} is reported on the green server (its agent lists the builds installed)`,
      );
    if (Math.floor(build.versionNum / 10000) <= Math.floor(f.serverVersionNum / 10000))
      return refuse(
        'not-applicable',
        `${versionText(build.versionNum)} is not a later major than blue's ${versionText(f.serverVersionNum)}`,
      );
    const j = precheckFacts(f, build);
    return {
      steps: [
        {
          name: 'pre-check',
          does: { kind: 'upgrade.precheck', herd: h.id, toVersionNum: build.versionNum },
          says: "read blue's primary again and say what would refuse the upgrade; nothing is changed",
          timeoutMs: 120_000,
          run: async (x) => {
            const p = primaryOf(h);
            if (p instanceof Refusal) throw p;
            const again = judge(await readBlueFacts(p), build.extensions);
            x.note({ stdout: [...again.blockers.map((b) => `blocker: ${b}`), ...again.warnings.map((w) => `note: ${w}`)].join('\n') });
            x.deps.outcome?.(
              again.blockers.length ? `${String(again.blockers.length)} blocker(s): ${again.blockers.join('; ')}` : 'no blocker',
            );
            if (again.blockers.length) throw new Error(`${String(again.blockers.length)} blocker(s): ${again.blockers.join('; ')}`);
          },
        },
      ],
      warnings: j.warnings,
      facts: j.facts,
    };
  },
});
