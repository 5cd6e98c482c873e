// upgrade-major: a new herd (green) on the target major on an empty server of the environment: its roles,
// schema and settings copied, a subscription to blue's publication in each database, the initial copy and
// catch-up followed to "ready". Blue serves throughout.
import { z } from 'zod';
import { herds } from '@/db/schema';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import { defineHerdAction, productionWarning, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { binDir } from '@/lib/fleet/drivers';
import { type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { loadRestoreServer, notThisEnvironment, type RestoreServer } from '@/lib/actions/steps/restore-steps';
import { pendingRefusal, unpinnedRefusal } from '@/lib/engine/define-action';
import { versionText } from './minor.action';
import { copied, type BlueFacts } from './blue-facts';
import { asks } from '@/lib/actions/drivers';
import {
  type TargetBuild,
  targetBuild,
  toVersionParam,
  parseTarget,
  primaryOf,
  type OpenUpgrade,
  openUpgradeOf,
  type PrecheckPrepared,
  readFacts,
  precheckFacts,
} from './major-parts';
import {
  type Green,
  type GreenState,
  precheckAgainStep,
  claimDirectoryStep,
  unclaimStep,
  initdbStep,
  settingsStep,
  startGreenStep,
  rolesAndPublicationsStep,
  registerGreenStep,
  schemaAndSubscribeStep,
  waitReadyStep,
} from './green-steps';

const majorParams = z
  .object({
    toVersion: toVersionParam,
    /** An empty server of the environment, for green's primary. */
    serverId: idText('serverId', MAX_ID),
    dataDirectory: z
      .string()
      .trim()
      .regex(/^\/[A-Za-z0-9._/-]{1,200}$/, 'an absolute path of letters, digits and . _ - /')
      .refine((p) => !p.split('/').includes('..'), 'no .. in the path'),
    port: z.preprocess(
      (v) => (typeof v === 'string' ? (v.trim() ? Number(v) : undefined) : v),
      z.number({ message: 'port: a number' }).int().min(1024).max(65535).optional(),
    ),
    /** Green's name in the environment; default: blue's name and the major ("orders-17"). */
    name: z.preprocess(
      (v) => (typeof v === 'string' && !v.trim() ? undefined : v),
      z
        .string()
        .trim()
        .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and -')
        .optional(),
    ),
    /** Green's TLS certificate and key on its server, for its address: pgherd connects only over TLS. */
    sslCertFile: z
      .string({ message: 'sslCertFile: green needs its TLS certificate' })
      .regex(/^\/[^\n'\\]{1,300}$/, 'an absolute path, without quotes or backslashes'),
    sslKeyFile: z
      .string({ message: 'sslKeyFile: green needs its TLS key' })
      .regex(/^\/[^\n'\\]{1,300}$/, 'an absolute path, without quotes or backslashes'),
    /** What each sequence on green is set ahead of blue's value at the cut-over. */
    sequenceGap: z.preprocess(
      (v) => (typeof v === 'string' ? (v.trim() ? Number(v) : undefined) : v),
      z.number({ message: 'a number' }).int().min(1).max(1_000_000_000).optional(),
    ),
  })
  .strict();

interface MajorPrepared extends PrecheckPrepared {
  server: RestoreServer | null;
  taken: Set<string>;
  open: Map<number, OpenUpgrade | null>;
}

/**
 * Green's steps, as its pipeline: the pre-check again, the directory claimed (green taken away should the
 * upgrade stop before it is ready), initdb, settings, start, roles and publications, the registration,
 * schema and subscriptions, the copy followed to ready. With green's name and port, for the plan's checks.
 */
function greenSteps(h: HerdRef, blue: InstanceRef, f: BlueFacts, build: TargetBuild, srv: RestoreServer, p: z.output<typeof majorParams>) {
  const port = p.port ?? blue.port;
  const dbs = copied(f);
  const g: Green = {
    h,
    blue,
    build,
    srv,
    port,
    dir: p.dataDirectory,
    name: p.name ?? `${h.name}-${String(Math.floor(build.versionNum / 10000))}`,
    dbs,
    green: { host: srv.address, port, serverEnvironment: srv.environment, label: `${srv.hostname}:${String(port)}` },
    blueEnd: { host: blue.host, port: blue.port, serverEnvironment: blue.serverEnvironment, label: blue.label },
    version: versionText(build.versionNum),
    locale: dbs.find((d) => d.name === 'postgres') ?? dbs[0],
    checksums: f.dataChecksums,
    gap: p.sequenceGap ?? 1000,
    clientDirs: [build.binDir, binDir(Math.floor(build.versionNum / 10000)), binDir(blue.pgVersion)],
    sslCertFile: p.sslCertFile,
    sslKeyFile: p.sslKeyFile,
  };
  const steps: ActionStep<GreenState>[] = [
    precheckAgainStep(g),
    { ...claimDirectoryStep(g), always: unclaimStep(g) },
    initdbStep(g),
    settingsStep(g),
    startGreenStep(g),
    rolesAndPublicationsStep(g),
    registerGreenStep(g),
    schemaAndSubscribeStep(g),
    waitReadyStep(g),
  ];
  return { steps, name: g.name, port };
}

export const upgradeMajorAction = defineHerdAction({
  name: 'upgrade-major',
  control: asks('upgrade-major'),
  label: 'Upgrade to a new major (blue/green)',
  permission: 'admin',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: majorParams,
    fields: [
      {
        name: 'toVersion',
        label: 'Target major',
        kind: 'text',
        emptyLabel: '17',
        help: 'A major (its newest build on the server) or a release, 17.10.',
      },
      {
        name: 'serverId',
        label: 'Green server (id)',
        kind: 'text',
        emptyLabel: '',
        help: 'An empty server of the herd\u2019s environment.',
      },
      { name: 'dataDirectory', label: 'Data directory', kind: 'text', emptyLabel: '/var/lib/postgresql/17/main', help: 'Absent or empty.' },
      { name: 'port', label: 'Port', kind: 'text', emptyLabel: 'blue\u2019s port', help: '' },
      { name: 'name', label: 'Green\u2019s name', kind: 'text', emptyLabel: 'blue\u2019s name and the major', help: '' },
      { name: 'sslCertFile', label: 'TLS certificate', kind: 'text', emptyLabel: '', help: 'On the green server, for its address.' },
      { name: 'sslKeyFile', label: 'TLS key', kind: 'text', emptyLabel: '', help: '' },
      {
        name: 'sequenceGap',
        label: 'Sequence gap',
        kind: 'text',
        emptyLabel: '1000',
        help: 'Each sequence on green is set this far past blue\u2019s value at the cut-over.',
      },
    ],
  },
  prepare: async (herdList, params, db): Promise<MajorPrepared> => {
    if (herdList.length > 1)
      throw refuse('params', `a major upgrade takes one herd (its green server is the operation's); ${String(herdList.length)} were given`);
    const t = parseTarget(params.toVersion);
    const builds = new Map<number, TargetBuild | null>();
    const open = new Map<number, OpenUpgrade | null>();
    for (const h of herdList) {
      builds.set(h.id, await targetBuild(db, params.serverId, t.major, t.exact));
      open.set(h.id, await openUpgradeOf(db, h.id));
    }
    const taken = await db.select({ env: herds.environmentId, name: herds.name }).from(herds);
    return {
      facts: await readFacts(herdList),
      builds,
      open,
      server: await loadRestoreServer(db, params.serverId),
      taken: new Set(taken.map((r) => `${String(r.env)}/${r.name}`)),
    };
  },
  plan: (h, { params, prepared }): ActionPlan<GreenState> | Refusal => {
    const blue = primaryOf(h);
    if (blue instanceof Refusal) return blue;
    const o = prepared.open.get(h.id);
    if (o)
      return refuse(
        'not-applicable',
        `${h.label} has an upgrade under way (#${String(o.id)}, ${o.status}): cut over, roll back or clean it up first`,
      );
    const f = prepared.facts.get(h.id);
    if (typeof f === 'string' || !f) return refuse('topology', f ?? 'not read');
    const srv = prepared.server;
    // Green goes onto a server of blue's environment; another's is not named.
    if (!srv || srv.environmentId !== h.environmentId) return notThisEnvironment(params.serverId);
    if (srv.instances > 0)
      return refuse(
        'not-applicable',
        `${srv.hostname} holds ${String(srv.instances)} instance(s) of pgherd's inventory: green goes onto an empty server`,
      );
    const held =
      pendingRefusal([{ name: srv.hostname, approval: srv.approval }]) ?? unpinnedRefusal({}, [{ name: srv.hostname, ssh: srv.ssh }]);
    if (held) return held;
    const build = prepared.builds.get(h.id);
    if (!build)
      return refuse('not-applicable', `no build of ${params.toVersion} on ${srv.hostname} (its agent lists the builds installed)`);
    if (Math.floor(build.versionNum / 10000) <= Math.floor(f.serverVersionNum / 10000))
      return refuse(
        'not-applicable',
        `${versionText(build.versionNum)} is not a later major than blue's ${versionText(f.serverVersionNum)}: a minor release is upgrade-minor`,
      );
    const j = precheckFacts(f, build);
    if (j.blockers.length) return refuse('not-applicable', `pre-check: ${j.blockers.join('; ')}`);
    const g = greenSteps(h, blue, f, build, srv, params);
    if (prepared.taken.has(`${String(h.environmentId)}/${g.name}`))
      return refuse('params', `a herd named ${g.name} exists in ${h.environment}: give green another name`);
    return {
      steps: g.steps,
      warnings: [...productionWarning(h), ...j.warnings],
      facts: [
        ...j.facts,
        { label: 'Green', value: `${h.environment}/${g.name}: ${srv.hostname}:${String(g.port)} (${params.dataDirectory}), no replicas` },
        {
          label: 'Blue meanwhile',
          value: 'serves as before; its primary gets a publication and a table pgherd.upgrade_marker in each copied database',
        },
        { label: 'Then', value: 'cut over (upgrade-cutover) when green is ready: its own confirmation' },
      ],
      state: () => ({ claimed: false, kept: false, herdId: null, upgradeId: null, psql: null }),
    };
  },
});
