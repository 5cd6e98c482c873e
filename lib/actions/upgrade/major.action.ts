// Major upgrades by blue/green through logical replication, as four herd actions and a pre-check:
// - upgrade-precheck: what would refuse the upgrade (and what only warns), read from blue's primary.
// - upgrade-major: a new herd (green) on the target major on an empty server of the environment: its
//   roles, schema and settings copied, a subscription to blue's publication in each database, the
//   initial copy and catch-up followed to "ready". Blue serves throughout.
// - upgrade-cutover: PgBouncer paused, blue made read-only, a marker written on blue seen on green (every
//   commit before it applied), sequences set on green to blue's values plus a gap (checked one by one),
//   a reverse subscription from green to blue, the write name and PgBouncer moved to green, resumed.
// - upgrade-rollback: the same the other way: green read-only, caught up on blue, blue writable again.
// - upgrade-cleanup: the side not serving is taken away (its subscriptions and publications dropped,
//   its members stopped and removed from the inventory; their data directories are left on disk).
import { claimOwedForCleanup } from '@/lib/engine/owed';
import { and, eq, inArray, sql } from 'drizzle-orm';
import pg from 'pg';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { dnsRecords, herds, instances, majorUpgrades, operations, owedCleanups, poolers, postgresBuilds } from '@/db/schema';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import {
  defineHerdAction,
  productionWarning,
  type ActionDeps,
  type ActionPlan,
  type ActionStep,
  type RunContext,
} from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { errorText } from '@/lib/engine/errors';
import { memberArg } from '@/lib/engine/plan-identity';
import { writeAudit } from '@/lib/engine/write-audit';
import { binDir } from '@/lib/fleet/drivers';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import { observe, shown } from '@/lib/fleet/observe';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { stopSide } from './stop-side';
import { pauseSteps, repointAndResumeSteps, type PoolerSwitchState } from '@/lib/actions/steps/pooler-steps';
import { DEFAULT_PAUSE_BUDGET_S } from '@/lib/actions/steps/pooler-resume';
import { loadRestoreServer, notThisEnvironment, type RestoreServer } from '@/lib/actions/steps/restore-steps';
import { pendingRefusal, unpinnedRefusal } from '@/lib/engine/define-action';
import { versionText } from './minor.action';
import { copied, judge, readBlueFacts, type BlueFacts } from './blue-facts';
import { onDb, setReadOnly, type Endpoint } from '@/lib/actions/steps/endpoint-db';
import { ownTable, provenOwnTable, useOwnSchema } from '@/lib/fleet/own-schema';
import { dbnameArg, guardedScript } from './dump-guard';
import { newLogin, subscribe } from './subscribe';
import { abandonPlan, type AbandonState } from './abandon';
import {
  BACK_PUBLICATION,
  backSubscription,
  dropRoleOn,
  dropSlots,
  MARKER,
  MARKER_COLUMNS,
  MARKER_TABLE,
  PUBLICATION,
  subscription,
  type SubName,
} from './replication';
import { asks } from '@/lib/actions/drivers';

// --- Reading what there is -------------------------------------------------------------------------

interface TargetBuild {
  serverId: number;
  binDir: string;
  versionNum: number;
  extensions: Record<string, string>;
}

/** The newest build of `major` (or the release `exact`) on a server, as its agent reports it. */
async function targetBuild(db: Db, serverId: number, major: number, exact: number | null): Promise<TargetBuild | null> {
  const rows = await db.select().from(postgresBuilds).where(eq(postgresBuilds.serverId, serverId));
  const fit = rows
    .filter((b) => (exact !== null ? b.versionNum === exact : Math.floor(b.versionNum / 10000) === major))
    .sort((a, b) => b.versionNum - a.versionNum)[0];
  return fit ? { serverId, binDir: fit.binDir, versionNum: fit.versionNum, extensions: fit.extensions } : null;
}

/** The target: "17" (its newest build there) or "17.10". */
const toVersionParam = z
  .string()
  .trim()
  .regex(/^\d{2,3}(\.\d{1,4})?$/, 'a major such as 17, or a release such as 17.10');

function parseTarget(v: string): { major: number; exact: number | null } {
  const [maj = '0', min] = v.split('.');
  return { major: Number(maj), exact: min === undefined ? null : Number(maj) * 10000 + Number(min) };
}

const primaryOf = (h: HerdRef): InstanceRef | Refusal => {
  const p = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (p.length !== 1)
    return refuse('topology', p.length ? `${h.label} has ${p.length} running primaries` : `${h.label} has no running primary`);
  return p[0] as InstanceRef;
};

interface OpenUpgrade {
  id: number;
  status: string;
  blueHerdId: number | null;
  greenHerdId: number | null;
  databases: string[];
  toVersionNum: number;
  sequenceGap: number;
  operationId: number | null;
}

/** The herd's open upgrade (as blue or as green). */
async function openUpgradeOf(db: Db, herdId: number): Promise<OpenUpgrade | null> {
  const [u] = await db
    .select()
    .from(majorUpgrades)
    .where(
      sql`(${majorUpgrades.blueHerdId} = ${herdId} OR ${majorUpgrades.greenHerdId} = ${herdId}) AND ${majorUpgrades.status} IN ('building', 'ready', 'cut-over')`,
    )
    .orderBy(sql`${majorUpgrades.id} DESC`)
    .limit(1);
  return u ?? null;
}

// --- SQL and SSH helpers ---------------------------------------------------------------------------

interface Labelled extends Endpoint {
  label: string;
}

/** How a client tool on blue's host reaches blue as the bootstrap superuser: its first socket directory. */
async function localLogin(blue: Labelled): Promise<string[]> {
  const socket = await onDb(
    blue,
    'postgres',
    async (c) => (await c.query<{ s: string }>("SELECT current_setting('unix_socket_directories') AS s")).rows[0]?.s ?? '',
  );
  return ['-h', socket.split(',')[0]?.trim() || '/tmp', '-p', String(blue.port), '-U', 'postgres'];
}

/**
 * Each sequence and its last value, read from the sequence itself: pg_sequences says null for one set
 * with is_called false (setval(s, n, false)), whose next value is n all the same.
 */
const SEQUENCES = `SELECT format('%I.%I', schemaname, sequencename) AS s,
  (xpath('/row/last_value/text()', query_to_xml(format('SELECT last_value FROM %I.%I', schemaname, sequencename), false, true, '')))[1]::text AS v
  FROM pg_sequences WHERE schemaname <> 'pgherd'`;

/** The first of `dirs` on the host that has `tool`, or the error saying none has. */
async function toolOn(deps: ActionDeps, t: { ssh: SshTarget }, ctx: StepContext, tool: string, dirs: string[]): Promise<string> {
  const r = await execNoted(
    deps,
    t,
    ctx,
    [
      'sh',
      '-c',
      'tool=$1; shift; for d; do if [ -x "$d/$tool" ]; then echo "$d/$tool"; exit 0; fi; done; exit 1',
      'pgherd-which',
      tool,
      ...dirs,
    ],
    20_000,
  );
  const found = r.stdout.trim();
  if (r.code !== 0 || !found) throw new Error(`no ${tool} on ${t.ssh.host} in ${dirs.join(', ')}`);
  return found;
}

// --- The pre-check --------------------------------------------------------------------------------

const precheckParams = z
  .object({
    toVersion: toVersionParam,
    /** The server green would go on (its build is checked); left out: blue's primary's. */
    serverId: idText('serverId', MAX_ID).optional(),
  })
  .strict();

interface PrecheckPrepared {
  facts: Map<number, BlueFacts | string>;
  builds: Map<number, TargetBuild | null>;
}

async function readFacts(herdList: HerdRef[]): Promise<Map<number, BlueFacts | string>> {
  const facts = new Map<number, BlueFacts | string>();
  for (const h of herdList) {
    const p = primaryOf(h);
    if (p instanceof Refusal) facts.set(h.id, p.reason);
    else facts.set(h.id, await readBlueFacts(p).catch((err: unknown) => `${p.label} could not be read: ${errorText(err)}`));
  }
  return facts;
}

function precheckFacts(f: BlueFacts, build: TargetBuild) {
  const { blockers, warnings } = judge(f, build.extensions);
  return {
    blockers,
    warnings,
    facts: [
      { label: 'Target build', value: `${versionText(build.versionNum)} (${build.binDir})` },
      { label: 'Blue runs', value: versionText(f.serverVersionNum) },
      {
        label: 'Databases copied',
        value: copied(f)
          .map((d) => `${d.name} (${String(d.tables)} tables, ${String(d.sequences)} sequences)`)
          .join(', '),
      },
      { label: 'Blockers', value: blockers.length ? blockers.join('; ') : 'none' },
    ],
  };
}

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

// --- Green -----------------------------------------------------------------------------------------

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

interface GreenState {
  /** The data directory is green's (found empty, then laid down): the cleanup takes it away unless kept. */
  claimed: boolean;
  kept: boolean;
  herdId: number | null;
  upgradeId: number | null;
  psql: string | null;
}

/** Runs `sql` on green through psql on its host, over the local socket as the bootstrap superuser. */
async function psqlOn(
  x: RunContext<GreenState>,
  srv: RestoreServer,
  socketDir: string,
  port: number,
  database: string,
  sqlText: string,
): Promise<void> {
  if (!x.state.psql) throw new Error('no psql was found on green');
  await execNotedOk(
    x.deps,
    srv,
    x,
    [
      x.state.psql,
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      socketDir,
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      dbnameArg(database),
      '-f',
      '-',
    ],
    600_000,
    sqlText,
  );
}

function greenSteps(h: HerdRef, blue: InstanceRef, f: BlueFacts, build: TargetBuild, srv: RestoreServer, p: z.output<typeof majorParams>) {
  const port = p.port ?? blue.port;
  const dir = p.dataDirectory;
  const name = p.name ?? `${h.name}-${String(Math.floor(build.versionNum / 10000))}`;
  const dbs = copied(f);
  const green: Labelled = { host: srv.address, port, serverEnvironment: srv.environment, label: `${srv.hostname}:${String(port)}` };
  const blueEnd: Labelled = { host: blue.host, port: blue.port, serverEnvironment: blue.serverEnvironment, label: blue.label };
  const version = versionText(build.versionNum);
  const locale = dbs.find((d) => d.name === 'postgres') ?? dbs[0];
  const gap = p.sequenceGap ?? 1000;
  const clientDirs = [build.binDir, binDir(Math.floor(build.versionNum / 10000)), binDir(blue.pgVersion)];
  const steps: ActionStep<GreenState>[] = [
    {
      name: 'pre-check again',
      does: { kind: 'upgrade.precheck', herd: h.id, toVersionNum: build.versionNum },
      says: "read blue's primary again: any blocker stops the upgrade here, nothing changed",
      timeoutMs: 120_000,
      run: async (x) => {
        const again = judge(await readBlueFacts(blue), build.extensions);
        if (again.blockers.length) throw refuse('not-applicable', `${again.blockers.join('; ')}; nothing was changed`);
        x.note({ stdout: again.warnings.join('\n') });
      },
    },
    {
      name: `check that ${srv.hostname}:${dir} is empty`,
      does: { kind: 'upgrade.claim-directory', server: srv.id, dataDirectory: dir },
      says: `check that ${dir} on ${srv.hostname} is absent or empty, then create it (mode 0700)`,
      timeoutMs: 30_000,
      run: async (x) => {
        const r = await execNoted(x.deps, srv, x, ['sh', '-c', '[ ! -e "$1" ] || [ -z "$(ls -A -- "$1")" ]', 'pgherd-empty', dir], 20_000);
        if (r.code !== 0)
          throw refuse(
            'not-applicable',
            `${srv.hostname}:${dir} is not empty: green goes only into an empty directory; nothing was changed`,
          );
        await execNotedOk(x.deps, srv, x, ['mkdir', '-p', '-m', '0700', '--', dir], 20_000);
        x.state.claimed = true;
      },
      always: {
        name: 'take green away unless it is kept',
        does: { kind: 'upgrade.unclaim', server: srv.id, dataDirectory: dir },
        says: `should the upgrade stop before green is ready: green stopped, ${dir} removed, green taken out of the inventory`,
        timeoutMs: 180_000,
        run: async (x) => {
          if (!x.state.claimed || x.state.kept) return;
          await execNoted(x.deps, srv, x, [`${build.binDir}/pg_ctl`, '-D', dir, '-m', 'immediate', '-w', '-t', '60', 'stop'], 90_000);
          await execNotedOk(x.deps, srv, x, ['rm', '-rf', '--', dir], 60_000);
          // The slots green's subscriptions made on blue would keep WAL there for ever.
          if (x.state.upgradeId !== null) await dropSlots(blueEnd, x.state.upgradeId);
          if (x.state.upgradeId !== null)
            await dropRoleOn(
              blueEnd,
              dbs.map((d) => d.name),
              x.state.upgradeId,
            );
          if (x.state.upgradeId !== null)
            await x.deps.db.update(majorUpgrades).set({ status: 'failed' }).where(eq(majorUpgrades.id, x.state.upgradeId));
          if (x.state.herdId !== null) await x.deps.db.delete(herds).where(eq(herds.id, x.state.herdId));
          // Blue's publications stay: harmless, and the next attempt uses them.
          x.note({ stdout: `green removed from ${srv.hostname}:${dir} and from the inventory` });
        },
      },
    },
    {
      name: `initdb (${version})`,
      does: { kind: 'upgrade.initdb', server: srv.id, binDir: build.binDir, dataDirectory: dir, locale: locale?.collate ?? null },
      says: `${build.binDir}/initdb -D ${dir} (encoding ${locale?.encoding ?? 'UTF8'}, locale ${locale?.collate ?? 'C.UTF-8'}, as blue's)`,
      timeoutMs: 300_000,
      run: async (x) => {
        x.state.psql = await toolOn(x.deps, srv, x, 'psql', clientDirs);
        await execNotedOk(
          x.deps,
          srv,
          x,
          [
            `${build.binDir}/initdb`,
            '-D',
            dir,
            '-U',
            'postgres',
            '--auth-local=trust',
            '--auth-host=reject',
            '-E',
            locale?.encoding ?? 'UTF8',
            `--lc-collate=${locale?.collate ?? 'C.UTF-8'}`,
            `--lc-ctype=${locale?.ctype ?? 'C.UTF-8'}`,
          ],
          280_000,
        );
      },
    },
    {
      name: "green's settings and blue's access rules",
      does: { kind: 'upgrade.settings', port, address: srv.address, ssl: [p.sslCertFile, p.sslKeyFile] },
      says: `port ${String(port)}, listen on ${srv.address}, wal_level logical (for the way back), its TLS certificate; pg_hba.conf as blue's primary has it`,
      timeoutMs: 60_000,
      run: async (x) => {
        const hba = await onDb(
          blueEnd,
          'postgres',
          async (c) => (await c.query<{ t: string }>(`SELECT pg_read_file(current_setting('hba_file')) AS t`)).rows[0]?.t ?? '',
        );
        if (!hba.trim()) throw new Error(`${blue.label}'s pg_hba.conf could not be read`);
        const conf = [
          '# pgherd: green of a major upgrade',
          `listen_addresses = '${srv.address}'`,
          `port = ${String(port)}`,
          `unix_socket_directories = '${dir}'`,
          `cluster_name = '${name}'`,
          'wal_level = logical',
          'max_wal_senders = 20',
          'max_replication_slots = 20',
          'max_logical_replication_workers = 8',
          'ssl = on',
          `ssl_cert_file = '${p.sslCertFile}'`,
          `ssl_key_file = '${p.sslKeyFile}'`,
          '',
        ].join('\n');
        await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat >> "$1/postgresql.conf"', 'pgherd-settings', dir], 20_000, conf);
        await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat > "$1/pg_hba.conf"', 'pgherd-hba', dir], 20_000, hba);
      },
    },
    {
      name: `start green (${version})`,
      does: { kind: 'upgrade.start', server: srv.id, binDir: build.binDir, dataDirectory: dir },
      says: `${build.binDir}/pg_ctl start`,
      timeoutMs: 180_000,
      run: async (x) => {
        await execNotedOk(
          x.deps,
          srv,
          x,
          [`${build.binDir}/pg_ctl`, '-D', dir, '-l', `${dir}/pg_ctl.log`, '-w', '-t', '120', 'start'],
          170_000,
        );
      },
    },
    {
      name: "blue's roles, the marker table and the publications",
      does: { kind: 'upgrade.roles-and-publications', blue: memberArg(blue), databases: dbs.map((d) => d.name) },
      says: `copy blue's roles (pg_dumpall --roles-only on ${blue.ssh.host}); on blue, in ${dbs.map((d) => d.name).join(', ')}: table ${MARKER} and publication ${PUBLICATION} (FOR ALL TABLES)`,
      timeoutMs: 300_000,
      run: async (x) => {
        const login = await localLogin(blueEnd);
        const dumpall = await toolOn(x.deps, blue, x, 'pg_dumpall', [binDir(blue.pgVersion), blue.binDir].filter(Boolean));
        const roles = await execNotedOk(
          x.deps,
          blue,
          x,
          [dumpall, '--roles-only', '--no-role-passwords', ...login],
          120_000,
          undefined,
          false,
        );
        // With their passwords' SCRAM secrets, read over TLS (never printed in the record).
        const secrets = await onDb(blueEnd, 'postgres', async (c) =>
          (
            await c.query<{ stmt: string }>(
              `SELECT format('ALTER ROLE %I PASSWORD %L;', rolname, rolpassword) AS stmt FROM pg_authid WHERE rolpassword IS NOT NULL AND rolname <> 'postgres'`,
            )
          ).rows.map((r) => r.stmt),
        );
        const script = guardedScript(roles.stdout, `the roles of ${blue.label} (pg_dumpall --roles-only)`)
          .split('\n')
          .filter((l) => !/^CREATE ROLE postgres;$/.test(l))
          .concat(secrets)
          .join('\n');
        await psqlOn(x, srv, dir, port, 'postgres', script);
        for (const d of dbs)
          await onDb(blueEnd, d.name, async (c) => {
            // Written as superuser at every switch: proven pgherd's own plain table first (a role that made
            // schema pgherd before could own the table and hang a trigger on it), else refused.
            await ownTable(c, MARKER_TABLE, MARKER_COLUMNS).catch((err: unknown) => {
              throw err instanceof Refusal ? refuse(err.code, `${blue.label}/${d.name}: ${err.reason}; nothing was copied`) : err;
            });
            const has = await c.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [PUBLICATION]);
            if (!has.rowCount) await c.query(`CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES`);
          });
        x.note({ stdout: `roles copied; ${dbs.map((d) => d.name).join(', ')}: ${MARKER} and ${PUBLICATION} on blue` });
      },
    },
    {
      name: 'register green in the inventory',
      does: { kind: 'upgrade.register', environment: h.environmentId, name, server: srv.id, port, blue: h.id },
      says: `register ${h.environment}/${name} (${version}, its primary ${srv.hostname}:${String(port)}) as blue's upgrade, building`,
      timeoutMs: 30_000,
      run: async (x) => {
        const sysid = await onDb(
          green,
          'postgres',
          async (c) => (await c.query<{ s: string }>('SELECT system_identifier::text AS s FROM pg_control_system()')).rows[0]?.s ?? null,
        );
        const ids = await x.deps.db.transaction(async (tx) => {
          const [g] = await tx
            .insert(herds)
            .values({
              environmentId: h.environmentId,
              name,
              description: `Green of ${h.label}'s upgrade to ${version} (operation #${String(x.deps.operation?.id ?? '?')})`,
              defaultPort: port,
              defaultDataDirectory: dir,
              pgVersion: Math.floor(build.versionNum / 10000),
              controlDriver: 'pg_ctl',
              systemIdentifier: sysid,
            })
            .returning({ id: herds.id });
          if (!g) throw new Error('green was not inserted');
          await tx.insert(instances).values({
            herdId: g.id,
            serverId: srv.id,
            port,
            dataDirectory: dir,
            pgVersion: Math.floor(build.versionNum / 10000),
            binDir: build.binDir,
            serverVersionNum: build.versionNum,
            role: 'primary',
            observedRole: 'primary',
            state: 'running',
            lastObservedAt: new Date(),
          });
          const [u] = await tx
            .insert(majorUpgrades)
            .values({
              blueHerdId: h.id,
              greenHerdId: g.id,
              toVersionNum: build.versionNum,
              databases: dbs.map((d) => d.name),
              sequenceGap: gap,
              operationId: x.deps.operation?.id ?? null,
            })
            .returning({ id: majorUpgrades.id });
          if (!u) throw new Error('the upgrade was not recorded');
          return { herd: g.id, upgrade: u.id };
        });
        x.state.herdId = ids.herd;
        x.state.upgradeId = ids.upgrade;
        x.note({ stdout: `herd ${String(ids.herd)}, upgrade ${String(ids.upgrade)}` });
      },
    },
    {
      name: 'schema and subscriptions',
      does: { kind: 'upgrade.schema-and-subscribe', databases: dbs.map((d) => d.name), publication: PUBLICATION },
      says: `for each database: pg_dump --schema-only on ${blue.ssh.host}, applied on green (pg_dump's \\restrict guard kept); on green a subscription to ${PUBLICATION} (initial copy) as the upgrade's own role, TLS verified, and publication ${BACK_PUBLICATION} for the way back`,
      timeoutMs: 1_800_000,
      run: async (x) => {
        const upgradeId = x.state.upgradeId;
        if (upgradeId === null) throw new Error('the upgrade is not recorded');
        const login = await localLogin(blueEnd);
        const dump = await toolOn(x.deps, blue, x, 'pg_dump', [binDir(blue.pgVersion), blue.binDir].filter(Boolean));
        // One password for all of green's subscriptions: each new one replaces the one before.
        const upgradeLogin = await newLogin(blueEnd, upgradeId);
        for (const [k, d] of dbs.entries()) {
          if (d.name !== 'postgres') await psqlOn(x, srv, dir, port, 'postgres', `CREATE DATABASE ${pg.escapeIdentifier(d.name)};`);
          const ddl = await execNotedOk(
            x.deps,
            blue,
            x,
            [dump, '--schema-only', '--no-publications', '--no-subscriptions', ...login, '-d', dbnameArg(d.name)],
            600_000,
            undefined,
            false,
          );
          await psqlOn(x, srv, dir, port, d.name, guardedScript(ddl.stdout, `the schema of ${blue.label}/${d.name} (pg_dump)`));
          await onDb(green, d.name, async (c) => {
            await c.query(`CREATE PUBLICATION ${BACK_PUBLICATION} FOR ALL TABLES`);
          });
          await subscribe(x.deps, x, {
            sub: { ...green, ssh: srv.ssh, dataDirectory: dir },
            pub: blueEnd,
            login: upgradeLogin,
            database: d.name,
            name: subscription(upgradeId)(k),
            publication: PUBLICATION,
            upgradeId,
            copyData: true,
          });
        }
      },
    },
    {
      name: 'initial copy and catch-up',
      does: { kind: 'upgrade.wait-ready', databases: dbs.map((d) => d.name) },
      says: 'follow the initial copy (tables ready, bytes behind) until every table is copied and green is less than 16 MB behind',
      timeoutMs: 24 * 3600_000,
      run: async (x) => {
        const upgradeId = x.state.upgradeId;
        if (upgradeId === null) throw new Error('the upgrade is not recorded');
        for (let last = 0; ;) {
          const s = await progress(
            blueEnd,
            green,
            dbs.map((d) => d.name),
            upgradeId,
          );
          if (Date.now() - last > 5000) {
            x.note({ stdout: `${String(s.ready)} of ${String(s.tables)} tables copied; ${String(s.behind)} bytes behind` });
            last = Date.now();
          }
          if (s.ready === s.tables && s.behind < 16 * 1024 * 1024) break;
          if (x.signal.aborted) throw new Error('stopped while green was catching up');
          await new Promise((r) => setTimeout(r, 500));
        }
        // Green takes no client's writes before the cut-over (its subscriptions still apply).
        await setReadOnly(green, true);
        await x.deps.db.update(majorUpgrades).set({ status: 'ready', readyAt: new Date() }).where(eq(majorUpgrades.id, upgradeId));
        x.state.kept = true;
        x.deps.outcome?.(`${h.environment}/${name} on ${version} is ready and current: cut over when you are ready (upgrade-cutover)`);
      },
    },
  ];
  return { steps, name, port };
}

/** Tables copied of all, and the bytes green's slowest subscription is behind blue. */
async function progress(from: Endpoint, to: Endpoint, databases: string[], upgradeId: number, sub: SubName = subscription(upgradeId)) {
  let tables = 0;
  let ready = 0;
  for (const [k, d] of databases.entries()) {
    const r = await onDb(
      to,
      d,
      async (c) =>
        (
          await c.query<{ n: number; r: number }>(
            `SELECT count(*)::int AS n, count(*) FILTER (WHERE srsubstate = 'r')::int AS r FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid WHERE s.subname = $1`,
            [sub(k)],
          )
        ).rows[0],
    );
    tables += r?.n ?? 0;
    ready += r?.r ?? 0;
  }
  const behind = await onDb(from, 'postgres', async (c) =>
    Number(
      (
        await c.query<{ b: string | null }>(
          `SELECT max(pg_current_wal_lsn() - coalesce(confirmed_flush_lsn, '0/0'))::text AS b FROM pg_replication_slots WHERE slot_name = ANY($1::text[])`,
          [databases.map((_, k) => sub(k))],
        )
      ).rows[0]?.b ?? 'NaN',
    ),
  );
  return { tables, ready, behind: Number.isFinite(behind) ? behind : Number.MAX_SAFE_INTEGER };
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

// --- Cut-over and roll back ------------------------------------------------------------------------

const switchParams = z
  .object({
    /** How long PgBouncer may hold clients before its armed RESUME lets them through. */
    pauseBudgetSeconds: z.preprocess(
      (v) => (typeof v === 'string' ? (v.trim() ? Number(v) : undefined) : v),
      z.number({ message: 'a number' }).int().min(5).max(900).optional(),
    ),
  })
  .strict();

interface SwitchPrepared {
  open: Map<number, OpenUpgrade | null>;
  /** Whether the operation that builds green has ended (a worker killed mid-build leaves it `building`). */
  buildEnded: Map<number, boolean>;
  /** Blue and green herds of each target's upgrade. */
  sides: Map<number, { blue: HerdRef; green: HerdRef } | string>;
  /** Blue, read on its own: an upgrade whose green is gone can still be abandoned. */
  blues: Map<number, HerdRef | null>;
  /** Green when it is still in the inventory. */
  greens: Map<number, HerdRef | null>;
  /** For a cut-over upgrade whose green is lost: why (its herd deleted, or no member answers as a primary). */
  greenLost: Map<number, string>;
}

interface SwitchState extends PoolerSwitchState {
  fenced: boolean;
  /** Its owed_cleanups row: a worker's reconcile makes the old side writable again should this worker die before the switch. */
  fenceOwed: number | null;
  /** The new side's owed writability, from the switch until it is writable. */
  toOwed: number | null;
  switched: boolean;
  to: InstanceRef | undefined;
}

/** Why green is lost (no member answers as a primary, Postgres asked now), or null when one does. */
async function lostWhy(green: HerdRef): Promise<string | null> {
  if (!green.members.length) return `${green.label} has no member left in the inventory`;
  const seen = await Promise.all(green.members.map(async (m) => [m, await observe(m, 3000)] as const));
  if (seen.some(([, o]) => o.reachable && o.inRecovery === false)) return null;
  return seen.map(([m, o]) => `${m.label} ${o.reachable ? 'answers as a replica' : `does not answer (${shown(o.error)})`}`).join('; ');
}

async function prepareSwitch(herdList: HerdRef[], db: Db): Promise<SwitchPrepared> {
  const open = new Map<number, OpenUpgrade | null>();
  const buildEnded = new Map<number, boolean>();
  const sides = new Map<number, { blue: HerdRef; green: HerdRef } | string>();
  const blues = new Map<number, HerdRef | null>();
  const greens = new Map<number, HerdRef | null>();
  const greenLost = new Map<number, string>();
  for (const h of herdList) {
    const u = await openUpgradeOf(db, h.id);
    open.set(h.id, u);
    if (!u) continue;
    const [op] =
      u.operationId === null ? [] : await db.select({ f: operations.finishedAt }).from(operations).where(eq(operations.id, u.operationId));
    buildEnded.set(h.id, u.operationId === null || !op || op.f !== null);
    const refs = await loadHerdRefs(
      db,
      [u.blueHerdId, u.greenHerdId].filter((id): id is number => id !== null),
    );
    const blue = refs.find((r) => r.id === u.blueHerdId) ?? null;
    const green = refs.find((r) => r.id === u.greenHerdId) ?? null;
    blues.set(h.id, blue);
    greens.set(h.id, green);
    if (u.greenHerdId === null || u.blueHerdId === null)
      sides.set(h.id, `its ${u.greenHerdId === null ? 'green' : 'blue'} herd was deleted from the inventory`);
    else sides.set(h.id, blue && green ? { blue, green } : 'blue or green is gone from the inventory');
    if (u.status === 'cut-over') {
      const lost = green ? await lostWhy(green) : 'its herd was deleted from the inventory';
      if (lost !== null) greenLost.set(h.id, lost);
    }
  }
  return { open, buildEnded, sides, blues, greens, greenLost };
}

const endpointOf = (m: InstanceRef): Labelled => ({ host: m.host, port: m.port, serverEnvironment: m.serverEnvironment, label: m.label });

/** Records that `instance` owes its clients their writes (a writes-fence row): settled by the flow, else a worker's reconcile. */
async function oweWritable(
  db: Pick<Db, 'insert'>,
  o: { targetId: number; herdId: number; instanceId: number; upgradeId: number; says: string },
): Promise<number | null> {
  const [owed] = await db
    .insert(owedCleanups)
    .values({ ...o, kind: 'writes-fence', databases: [], resumeToken: '', dueBy: new Date() })
    .returning({ id: owedCleanups.id });
  return owed?.id ?? null;
}

/**
 * Commits a marker row on `from` (flushed at its commit whatever synchronous_commit says: WAL is sent
 * once flushed) and waits until `to` has it, looking every 5 ms: every commit before it is applied
 * there. The time it took, or null when it did not arrive within `withinMs`.
 */
async function markerThrough(from: Endpoint, to: Endpoint, database: string, token: string, withinMs: number, signal: AbortSignal) {
  const t0 = Date.now();
  await onDb(from, database, async (c) => {
    await useOwnSchema(c, false);
    if (!(await provenOwnTable(c, MARKER_TABLE))) throw refuse('not-applicable', `${database}: ${MARKER} is missing`);
    await c.query('BEGIN READ WRITE');
    await c.query('SET LOCAL synchronous_commit = on');
    await c.query(`INSERT INTO ${MARKER} (token) VALUES ($1)`, [token]);
    await c.query('COMMIT');
  });
  return onDb(to, database, async (c) => {
    await useOwnSchema(c, false);
    if (!(await provenOwnTable(c, MARKER_TABLE))) throw refuse('not-applicable', `${database}: ${MARKER} is missing`);
    for (;;) {
      if ((await c.query(`SELECT 1 FROM ${MARKER} WHERE token = $1`, [token])).rowCount) return Date.now() - t0;
      if (signal.aborted || Date.now() - t0 > withinMs) return null;
      await new Promise((r) => setTimeout(r, 5));
    }
  });
}

/**
 * The switch from `from` (the side that takes the writes now) to `to`: PgBouncer paused, `from` made
 * read-only, a marker written there seen on `to`, sequences carried, the replication turned around,
 * names and poolers moved, resumed. `direction`: cut-over (blue to green) or roll back (green to blue).
 */
function switchPlan(
  h: HerdRef,
  u: OpenUpgrade,
  fromHerd: HerdRef,
  toHerd: HerdRef,
  direction: 'cutover' | 'rollback',
  budgetS: number,
): ActionPlan<SwitchState> | Refusal {
  const from = primaryOf(fromHerd);
  if (from instanceof Refusal) return from;
  const to = primaryOf(toHerd);
  if (to instanceof Refusal) return to;
  const fromEnd = endpointOf(from);
  const toEnd = endpointOf(to);
  // Where the writes go now: the pooler and the names are the serving herd's (blue before the cut-over, green after).
  const serving = fromHerd;
  const oldSub = direction === 'cutover' ? subscription(u.id) : backSubscription(u.id); // on `to`, fed by `from`
  const newSub = direction === 'cutover' ? backSubscription(u.id) : subscription(u.id); // on `from`, fed by `to`
  const newPub = direction === 'cutover' ? BACK_PUBLICATION : PUBLICATION; // on `to`
  const token = `${direction}-${String(u.id)}-${String(Date.now())}`;
  const writeNames = serving.dns.filter((r) => r.match === 'role');
  const members = () => [{ ...to, role: 'primary' as const }];
  const steps: ActionStep<SwitchState>[] = [
    {
      name: 'pre-flight',
      does: { kind: 'upgrade.preflight', upgrade: u.id, direction, from: memberArg(from), to: memberArg(to) },
      says: `${to.label} is current (every table copied, less than 16 MB behind ${from.label}) and its subscription's worker runs, before anything is paused`,
      timeoutMs: 60_000,
      run: async (x) => {
        // A subscription made a moment ago may not have its worker yet (Postgres 15 starts one every
        // wal_retrieve_retry_interval at most): waited for here, where no client waits, not at the marker.
        // Then a marker through each database's subscription proves it applies now (a schema change on
        // one side stops it): all before anything is paused.
        for (const [k, d] of u.databases.entries()) {
          await onDb(toEnd, d, async (c) => {
            const t0 = Date.now();
            for (;;) {
              const r = await c.query(`SELECT 1 FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL AND pid IS NOT NULL`, [
                oldSub(k),
              ]);
              if (r.rowCount) return;
              if (Date.now() - t0 > 40_000)
                throw refuse(
                  'topology',
                  `${to.label}/${d}: subscription ${oldSub(k)} has no running worker (see its log); nothing was changed`,
                );
              if (x.signal.aborted) throw new Error('stopped waiting for the subscription worker');
              await new Promise((r) => setTimeout(r, 100));
            }
          });
          const probe = await markerThrough(fromEnd, toEnd, d, `${token}-preflight`, 10_000, x.signal);
          if (probe === null)
            throw refuse(
              'topology',
              `${to.label}/${d} does not apply ${from.label}'s changes (a marker did not arrive in 10 s: a schema change on one side? see ${to.label}'s log); nothing was changed`,
            );
        }
        const s = await progress(fromEnd, toEnd, u.databases, u.id, oldSub);
        x.note({ stdout: `${String(s.ready)} of ${String(s.tables)} tables ready; ${String(s.behind)} bytes behind` });
        if (s.ready !== s.tables || s.behind >= 16 * 1024 * 1024)
          throw refuse(
            'topology',
            `${to.label} is not current (${String(s.ready)} of ${String(s.tables)} tables ready, ${String(s.behind)} bytes behind); nothing was changed`,
          );
      },
    },
    ...pauseSteps<SwitchState>(serving.poolers, (s) => (s.switched ? s.to : undefined), budgetS),
    {
      name: `${from.label}: read-only`,
      does: { kind: 'upgrade.fence-writes', instance: memberArg(from) },
      says: `ALTER SYSTEM SET default_transaction_read_only = on on ${from.label}, reload: no client commits there from now on (replication still applies)`,
      timeoutMs: 30_000,
      run: async (x) => {
        if (x.deps.targetId === undefined) throw new Error('a fence is owed back by its target: it runs only as part of an operation');
        // Owed before it is taken: should this worker die before the switch, another one's reconcile gives it back.
        x.state.fenceOwed = await oweWritable(x.deps.db, {
          targetId: x.deps.targetId,
          herdId: fromHerd.id,
          instanceId: from.id,
          upgradeId: u.id,
          says: `${from.label} writable again (default_transaction_read_only reset), unless the switch to ${to.label} went through`,
        });
        x.state.fenced = true;
        const ended = await onDb(fromEnd, 'postgres', async (c) => {
          await c.query('ALTER SYSTEM SET default_transaction_read_only = on');
          await c.query('SELECT pg_reload_conf()');
          // A transaction begun before the reload could still commit after the marker: ended, its client told.
          return (
            await c.query<{ pid: number }>(
              `WITH open AS MATERIALIZED (
                 SELECT pid FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL)
               SELECT pid FROM open WHERE pg_terminate_backend(pid)`,
            )
          ).rowCount;
        });
        x.note({ stdout: `read-only; ${String(ended ?? 0)} open transaction(s) ended` });
      },
      always: {
        name: `${from.label}: writable again unless switched`,
        does: { kind: 'upgrade.unfence-unless-switched', instance: from.id },
        says: `should the switch stop before the names move: ${from.label} writable again`,
        timeoutMs: 30_000,
        givesBack: true,
        run: async (x) => {
          if (!x.state.fenced || x.state.switched) return;
          // Settled meanwhile by another worker's reconcile (this one frozen past its lease): not this cleanup's.
          if (x.state.fenceOwed !== null && (await claimOwedForCleanup(x.deps.db, x.state.fenceOwed)) === 'settled')
            return void x.note({ stdout: 'nothing done: the fence was settled by another worker meanwhile' });
          await setReadOnly(fromEnd, false);
          if (x.state.fenceOwed !== null)
            await x.deps.db
              .update(owedCleanups)
              .set({ settledAt: new Date(), settledHow: 'by its cleanup: writable again, the switch did not happen' })
              .where(eq(owedCleanups.id, x.state.fenceOwed));
          x.note({ stdout: `${from.label} takes writes again` });
        },
      },
    },
    {
      name: `every commit of ${from.label} applied on ${to.label}`,
      does: { kind: 'upgrade.marker', from: from.id, to: to.id, databases: u.databases },
      says: `write a marker in ${MARKER} on ${from.label} in each database and wait until ${to.label} has it: every commit before it is applied`,
      timeoutMs: 60_000,
      run: async (x) => {
        const t0 = Date.now();
        for (const d of u.databases)
          if ((await markerThrough(fromEnd, toEnd, d, token, 50_000 - (Date.now() - t0), x.signal)) === null)
            throw new Error(`${to.label}/${d} did not apply the marker in time: the switch stops, ${from.label} takes writes again`);
        x.note({ stdout: `applied on ${to.label} in ${String(Date.now() - t0)} ms` });
      },
    },
    {
      name: 'sequences',
      does: { kind: 'upgrade.sequences', from: from.id, to: to.id, gap: u.sequenceGap },
      says: `set each sequence on ${to.label} to ${from.label}'s value plus ${String(u.sequenceGap)}, then check each one`,
      timeoutMs: 120_000,
      run: async (x) => {
        const lines: string[] = [];
        for (const d of u.databases) {
          const seqs = await onDb(fromEnd, d, async (c) => (await c.query<{ s: string; v: string | null }>(SEQUENCES)).rows);
          if (!seqs.length) continue;
          await onDb(toEnd, d, async (c) => {
            await c.query(
              `SELECT setval(s::regclass, v::bigint + $2::bigint, true) FROM jsonb_to_recordset($1::jsonb) AS r(s text, v text) WHERE v IS NOT NULL`,
              [JSON.stringify(seqs), u.sequenceGap],
            );
            const now = await c.query<{ s: string; v: string | null }>(SEQUENCES);
            const at = new Map(now.rows.map((r) => [r.s, r.v]));
            const short = seqs.filter((q) => q.v !== null && BigInt(at.get(q.s) ?? '0') < BigInt(q.v) + BigInt(u.sequenceGap));
            if (short.length)
              throw new Error(`${d}: ${short.map((q) => q.s).join(', ')} not set past ${from.label}'s value on ${to.label}`);
          });
          lines.push(`${d}: ${String(seqs.length)} sequence(s) set and checked`);
        }
        x.note({ stdout: lines.join('\n') || 'no sequences' });
      },
    },
    {
      name: 'turn the replication around',
      does: { kind: 'upgrade.reverse', upgrade: u.id, drop: oldSub(0), create: newSub(0), databases: u.databases.length },
      says: `on ${from.label}, in each database: a subscription (${newSub(0)}, ...) to ${to.label}'s ${newPub} (nothing copied: both hold the same rows), so that it stays current; on ${to.label}: ${oldSub(0)}, ... dropped`,
      timeoutMs: 120_000,
      run: async (x) => {
        // One new password for all of them (each replaces the one before): a subscription an earlier attempt
        // left is made again with it. Nothing is lost: the new side takes no writes before the switch.
        for (const [k, d] of u.databases.entries())
          await onDb(fromEnd, d, async (c) => {
            if ((await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [newSub(k)])).rowCount)
              await c.query(`DROP SUBSCRIPTION ${newSub(k)}`);
          });
        const login = await newLogin(toEnd, u.id);
        for (const [k, d] of u.databases.entries()) {
          await subscribe(x.deps, x, {
            sub: { ...fromEnd, ssh: from.ssh, dataDirectory: from.dataDirectory },
            pub: toEnd,
            login,
            database: d,
            name: newSub(k),
            publication: newPub,
            upgradeId: u.id,
            copyData: false,
          });
          await onDb(toEnd, d, async (c) => {
            if ((await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [oldSub(k)])).rowCount)
              await c.query(`DROP SUBSCRIPTION ${oldSub(k)}`);
          });
        }
        // The switch, in one transaction: where the upgrade stands, and the names and poolers rows now the
        // serving herd's (a worker's reconcile then resumes a PgBouncer onto it, and leaves the old side fenced).
        await x.deps.db.transaction(async (tx) => {
          await tx
            .update(majorUpgrades)
            .set(direction === 'cutover' ? { status: 'cut-over', cutOverAt: new Date() } : { status: 'ready', rolledBackAt: new Date() })
            .where(eq(majorUpgrades.id, u.id));
          await tx
            .update(dnsRecords)
            .set({ herdId: toHerd.id })
            .where(and(eq(dnsRecords.herdId, fromHerd.id), eq(dnsRecords.match, 'role')));
          await tx.update(poolers).set({ herdId: toHerd.id }).where(eq(poolers.herdId, fromHerd.id));
          if (x.state.fenceOwed !== null)
            await tx
              .update(owedCleanups)
              .set({ settledAt: new Date(), settledHow: `the switch went through: ${from.label} stays read-only` })
              .where(eq(owedCleanups.id, x.state.fenceOwed));
          // From now on the new side owes its clients their writes: should the next step not make it
          // writable (it fails, the worker dies), a worker's reconcile does.
          if (x.deps.targetId !== undefined) {
            x.state.toOwed = await oweWritable(tx, {
              targetId: x.deps.targetId,
              herdId: toHerd.id,
              instanceId: to.id,
              upgradeId: u.id,
              says: `${to.label} writable (default_transaction_read_only reset): it serves since the switch`,
            });
          }
        });
        x.state.to = to;
        x.state.switched = true;
        x.state.promoted = true;
      },
    },
    {
      name: `${to.label}: writable`,
      does: { kind: 'upgrade.unfence', instance: memberArg(to) },
      says: `${to.label} takes writes (default_transaction_read_only reset)`,
      timeoutMs: 30_000,
      run: async (x) => {
        await setReadOnly(toEnd, false);
        if (x.state.toOwed !== null)
          await x.deps.db
            .update(owedCleanups)
            .set({ settledAt: new Date(), settledHow: 'by the flow: writable' })
            .where(eq(owedCleanups.id, x.state.toOwed));
      },
    },
    ...dnsSteps<SwitchState>(
      { ...serving, dns: writeNames },
      () => members(),
      () => [to],
      (rec) => `point ${rec.name} at ${to.hostname}`,
      undefined,
      { targetsOf: () => [to], name: (rec) => `DNS: ${rec.name} to ${to.hostname}` },
    ),
    ...repointAndResumeSteps<SwitchState>(serving.poolers, (s) => s.to, to),
    {
      name: 'record where the writes go',
      does: { kind: 'upgrade.record', upgrade: u.id, direction },
      says: `the names and PgBouncer are ${toHerd.label}'s now; the upgrade is ${direction === 'cutover' ? 'cut over (blue stays current: roll back, or clean up)' : 'back on blue (green stays current: cut over again, or clean up)'}`,
      timeoutMs: 30_000,
      settles: true,
      run: async (x) => {
        await writeAudit(x.deps.db, {
          user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
          action: direction === 'cutover' ? 'upgrade.cutover' : 'upgrade.rollback',
          objectType: 'herds',
          objectId: String(toHerd.id),
          objectLabel: toHerd.label,
          environmentId: toHerd.environmentId,
          changes: { serving: [fromHerd.label, toHerd.label] },
        });
        x.deps.outcome?.(`${toHerd.label} (${to.label}) takes the writes; ${fromHerd.label} is read-only and stays current`);
      },
    },
  ];
  return {
    steps,
    warnings: [
      ...productionWarning(h),
      serving.poolers.length
        ? 'writes through PgBouncer wait during the switch (about a second); direct connections to the old side get read-only errors'
        : 'the herd has no PgBouncer: clients must reconnect through the write name, and the old side refuses writes from the switch on',
    ],
    facts: [
      { label: 'From', value: `${fromHerd.label} (${from.label})` },
      { label: 'To', value: `${toHerd.label} (${to.label})` },
      { label: 'Committed transactions lost', value: 'none: the switch waits until a marker committed after the last write is applied' },
      { label: 'Sequences', value: `set past the old side's values by ${String(u.sequenceGap)}, each checked` },
      {
        label: 'The way back',
        value: direction === 'cutover' ? 'upgrade-rollback, as long as the upgrade is not cleaned up' : 'upgrade-cutover again',
      },
    ],
    state: () => ({ fenced: false, fenceOwed: null, toOwed: null, switched: false, to: undefined, promoted: false, repointed: new Set() }),
  };
}

function switchAction(direction: 'cutover' | 'rollback') {
  return defineHerdAction({
    name: direction === 'cutover' ? 'upgrade-cutover' : 'upgrade-rollback',
    control: asks('upgrade-major'),
    label: direction === 'cutover' ? 'Cut over to the upgraded herd' : 'Roll back to the herd before the upgrade',
    permission: 'admin',
    dangerous: true,
    // Moving the clients to the other side (or back) is a person's call on the day, after looking at it.
    schedulable: false,
    runsAsConfirmed: true,
    params: {
      schema: switchParams,
      fields: [
        {
          name: 'pauseBudgetSeconds',
          label: 'Pause at most (s)',
          kind: 'text',
          emptyLabel: String(DEFAULT_PAUSE_BUDGET_S),
          help: 'PgBouncer resumes by itself after this.',
        },
      ],
    },
    prepare: (herdList, _p, db) => prepareSwitch(herdList, db),
    plan: (h, { params, prepared }): ActionPlan<SwitchState> | Refusal => {
      const u = prepared.open.get(h.id);
      if (!u) return refuse('not-applicable', `${h.label} has no major upgrade under way (upgrade-major makes one)`);
      const sides = prepared.sides.get(h.id);
      if (!sides || typeof sides === 'string') return refuse('gone', sides ?? 'not read');
      const want = direction === 'cutover' ? 'ready' : 'cut-over';
      if (u.status !== want)
        return refuse(
          'not-applicable',
          direction === 'cutover'
            ? `the upgrade is ${u.status}: a cut-over takes a ready one${u.status === 'cut-over' ? ' (it is cut over already)' : ''}`
            : `the upgrade is ${u.status}: only a cut-over is rolled back`,
        );
      const lost = prepared.greenLost.get(h.id);
      if (direction === 'rollback' && lost !== undefined)
        return refuse(
          'not-applicable',
          `green is lost (${lost}): a roll back needs it; Clean up abandons it and points the write names and PgBouncer back at blue`,
        );
      const [from, to] = direction === 'cutover' ? [sides.blue, sides.green] : [sides.green, sides.blue];
      return switchPlan(h, u, from, to, direction, params.pauseBudgetSeconds ?? DEFAULT_PAUSE_BUDGET_S);
    },
  });
}

export const upgradeCutoverAction = switchAction('cutover');
export const upgradeRollbackAction = switchAction('rollback');

// --- Clean up --------------------------------------------------------------------------------------

interface CleanState {
  done: boolean;
}

export const upgradeCleanupAction = defineHerdAction({
  name: 'upgrade-cleanup',
  control: asks('upgrade-major'),
  label: 'Clean up a major upgrade',
  permission: 'admin',
  dangerous: true,
  // It drops the side not kept and with it the way back: a person's decision, never a schedule's.
  schedulable: false,
  runsAsConfirmed: true,
  params: { schema: z.object({}).strict(), fields: [] },
  prepare: (herdList, _p, db) => prepareSwitch(herdList, db),
  plan: (h, { prepared }): ActionPlan<CleanState> | ActionPlan<AbandonState> | Refusal => {
    const u = prepared.open.get(h.id);
    if (!u) return refuse('not-applicable', `${h.label} has no major upgrade under way`);
    if (u.status === 'building' && !prepared.buildEnded.get(h.id))
      return refuse('not-applicable', 'green is still being built: let upgrade-major finish (or fail) first');
    // Never cut over (or rolled back): blue serves, green goes, and nothing of green is needed for that
    // (it may be deleted, unreachable, or recorded as stopped while it answers).
    if (u.status !== 'cut-over') {
      const blue = prepared.blues.get(h.id);
      if (!blue) return refuse('gone', 'its blue herd was deleted from the inventory: nothing to keep');
      const blueP = primaryOf(blue);
      if (blueP instanceof Refusal) return blueP;
      return abandonPlan(h, u, blue, blueP, prepared.greens.get(h.id) ?? null);
    }
    // Cut over, and green lost: green goes and the clients go back to blue (Roll back would need green).
    const lost = prepared.greenLost.get(h.id);
    if (lost !== undefined) {
      const blue = prepared.blues.get(h.id);
      if (!blue) return refuse('gone', `green is lost (${lost}) and its blue herd was deleted from the inventory: nothing to keep`);
      const blueP = primaryOf(blue);
      if (blueP instanceof Refusal) return blueP;
      return abandonPlan(h, u, blue, blueP, prepared.greens.get(h.id) ?? null, lost);
    }
    const sides = prepared.sides.get(h.id);
    if (!sides || typeof sides === 'string') return refuse('gone', sides ?? 'not read');
    // Cut over: blue goes, green is kept (both sides are needed: green must serve).
    const [keep, drop] = [sides.green, sides.blue];
    const keepP = primaryOf(keep);
    if (keepP instanceof Refusal) return keepP;
    const dropP = primaryOf(drop);
    if (dropP instanceof Refusal) return dropP;
    const keepEnd = endpointOf(keepP);
    const dropEnd = endpointOf(dropP);
    const steps: ActionStep<CleanState>[] = [
      {
        name: 'drop the replication between them',
        does: { kind: 'upgrade.unsubscribe', upgrade: u.id, databases: u.databases },
        says: `every subscription and publication of the upgrade dropped, on both sides; ${MARKER} dropped on ${keep.label}`,
        timeoutMs: 300_000,
        run: async (x) => {
          for (const [k, d] of u.databases.entries()) {
            for (const [e, sub] of [
              [dropEnd, backSubscription(u.id)(k)],
              [dropEnd, subscription(u.id)(k)],
              [keepEnd, backSubscription(u.id)(k)],
              [keepEnd, subscription(u.id)(k)],
            ] as const)
              await onDb(e, d, async (c) => {
                if ((await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [sub])).rowCount)
                  await c.query(`DROP SUBSCRIPTION ${sub}`);
              });
            await onDb(keepEnd, d, async (c) => {
              await c.query(`DROP PUBLICATION IF EXISTS ${PUBLICATION}`);
              await c.query(`DROP PUBLICATION IF EXISTS ${BACK_PUBLICATION}`);
              await c.query(`DROP TABLE IF EXISTS ${MARKER}`);
            });
          }
          // Slots a half-built green left on blue (its subscriptions never made, or gone with it).
          await dropSlots(keepEnd, u.id);
          for (const e of [dropEnd, keepEnd]) await dropRoleOn(e, u.databases, u.id);
          x.note({ stdout: `${u.databases.join(', ')}: no replication of the upgrade left` });
        },
      },
      {
        name: `stop ${drop.label}`,
        does: { kind: 'upgrade.retire', herd: drop.id, members: drop.members.map(memberArg) },
        says: `stop every member of ${drop.label} (pg_ctl stop -m fast) and take the herd out of the inventory; their data directories stay on disk`,
        timeoutMs: 300_000,
        run: async (x) => {
          await stopSide(x.deps, x, drop.members);
          await x.deps.db.transaction(async (tx) => {
            await tx.update(majorUpgrades).set({ status: 'cleaned', cleanedAt: new Date() }).where(eq(majorUpgrades.id, u.id));
            await tx.delete(instances).where(inArray(instances.herdId, [drop.id]));
            await tx.delete(herds).where(eq(herds.id, drop.id));
          });
          await writeAudit(x.deps.db, {
            user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
            action: 'upgrade.cleanup',
            objectType: 'herds',
            objectId: String(drop.id),
            objectLabel: drop.label,
            environmentId: drop.environmentId,
            changes: { kept: [null, keep.label] },
          });
          x.deps.outcome?.(`${keep.label} kept; ${drop.label} stopped and out of the inventory`);
        },
      },
    ];
    return {
      steps,
      warnings: [...productionWarning(h), `${drop.label} is stopped: after this, there is no way back to blue`],
      facts: [
        { label: 'Kept', value: `${keep.label} (${keepP.label})` },
        {
          label: 'Taken away',
          value: `${drop.label} (${drop.members.map((m) => m.label).join(', ')}): stopped, out of the inventory, data left on disk`,
        },
      ],
      state: () => ({ done: false }),
    };
  },
});
