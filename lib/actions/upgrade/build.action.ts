// upgrade-major: a new herd (green) on the target major on an empty server of the environment: its roles,
// schema and settings copied, a subscription to blue's publication in each database, the initial copy and
// catch-up followed to "ready". Blue serves throughout.
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { z } from 'zod';
import { herds, instances, majorUpgrades } from '@/db/schema';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import { defineHerdAction, productionWarning, type ActionPlan, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { binDir } from '@/lib/fleet/drivers';
import { type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { loadRestoreServer, notThisEnvironment, type RestoreServer } from '@/lib/actions/steps/restore-steps';
import { pendingRefusal, unpinnedRefusal } from '@/lib/engine/define-action';
import { versionText } from './minor.action';
import { copied, judge, readBlueFacts, type BlueFacts } from './blue-facts';
import { onDb, setReadOnly } from '@/lib/actions/steps/endpoint-db';
import { ownTable } from '@/lib/fleet/own-schema';
import { dbnameArg, guardedScript } from './dump-guard';
import { newLogin, subscribe } from './subscribe';
import { BACK_PUBLICATION, dropRoleOn, dropSlots, MARKER, MARKER_COLUMNS, MARKER_TABLE, PUBLICATION, subscription } from './replication';
import { asks } from '@/lib/actions/drivers';
import {
  type TargetBuild,
  targetBuild,
  toVersionParam,
  parseTarget,
  primaryOf,
  type OpenUpgrade,
  openUpgradeOf,
  type Labelled,
  localLogin,
  toolOn,
  type PrecheckPrepared,
  readFacts,
  precheckFacts,
  progress,
} from './major-parts';

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
    { stdin: sqlText },
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
        await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat >> "$1/postgresql.conf"', 'pgherd-settings', dir], 20_000, { stdin: conf });
        await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat > "$1/pg_hba.conf"', 'pgherd-hba', dir], 20_000, { stdin: hba });
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
        const roles = await execNotedOk(x.deps, blue, x, [dumpall, '--roles-only', '--no-role-passwords', ...login], 120_000, {
          recordOutput: false,
        });
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
            { recordOutput: false },
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
