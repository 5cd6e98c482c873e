// The steps of upgrade-major's green, one factory each: the pre-check again, the data directory claimed
// (and green taken away should the upgrade stop before it is ready), initdb, the settings, the start,
// blue's roles and publications, green registered, the schema and subscriptions, the copy followed.
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { herds, instances, majorUpgrades } from '@/db/schema';
import { type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { binDir } from '@/lib/fleet/drivers';
import { type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { type RestoreServer } from '@/lib/actions/steps/restore-steps';
import { judge, readBlueFacts, type DatabaseFacts } from './blue-facts';
import { onDb, setReadOnly } from '@/lib/actions/steps/endpoint-db';
import { ownTable } from '@/lib/fleet/own-schema';
import { dbnameArg, guardedScript } from './dump-guard';
import { newLogin, subscribe } from './subscribe';
import { BACK_PUBLICATION, dropRoleOn, dropSlots, MARKER, MARKER_COLUMNS, MARKER_TABLE, PUBLICATION, subscription } from './replication';
import { type TargetBuild, type Labelled, localLogin, toolOn, progress } from './major-parts';

export interface GreenState {
  /** The data directory is green's (found empty, then laid down): the cleanup takes it away unless kept. */
  claimed: boolean;
  kept: boolean;
  herdId: number | null;
  upgradeId: number | null;
  psql: string | null;
}

/** What green's steps share: blue's herd and primary, green's server, build, name, port and directory, the databases copied. */
export interface Green {
  h: HerdRef;
  blue: InstanceRef;
  build: TargetBuild;
  srv: RestoreServer;
  port: number;
  dir: string;
  name: string;
  dbs: DatabaseFacts[];
  /** Green's primary and blue's, as a client reaches them. */
  green: Labelled;
  blueEnd: Labelled;
  /** The build's release, as people write it ("17.10"). */
  version: string;
  /** The database whose encoding and locale green is made with: postgres, else the first copied. */
  locale: DatabaseFacts | undefined;
  /** Blue's pages carry checksums: green's initdb is given --data-checksums. */
  checksums: boolean;
  gap: number;
  /** Where psql is looked for on green's host. */
  clientDirs: string[];
  sslCertFile: string;
  sslKeyFile: string;
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

/** Blue's primary read again, its blockers judged against the build: any stops the upgrade before anything changes. */
export function precheckAgainStep(z: Green): ActionStep<GreenState> {
  const { h, blue, build } = z;
  return {
    name: 'pre-check again',
    does: { kind: 'upgrade.precheck', herd: h.id, toVersionNum: build.versionNum },
    says: "read blue's primary again: any blocker stops the upgrade here, nothing changed",
    timeoutMs: 120_000,
    run: async (x) => {
      const again = judge(await readBlueFacts(blue), build.extensions);
      if (again.blockers.length) throw refuse('not-applicable', `${again.blockers.join('; ')}; nothing was changed`);
      x.note({ stdout: again.warnings.join('\n') });
    },
  };
}

/** Green's data directory found absent or empty on its server, then made (mode 0700) and claimed. */
export function claimDirectoryStep(z: Green): ActionStep<GreenState> {
  const { srv, dir } = z;
  return {
    name: `check that ${srv.hostname}:${dir} is empty`,
    does: { kind: 'upgrade.claim-directory', server: srv.id, dataDirectory: dir },
    says: `check that ${dir} on ${srv.hostname} is absent or empty, then create it (mode 0700)`,
    timeoutMs: 30_000,
    run: async (x) => {
      const r = await execNoted(x.deps, srv, x, ['sh', '-c', '[ ! -e "$1" ] || [ -z "$(ls -A -- "$1")" ]', 'pgherd-empty', dir], 20_000);
      if (r.code !== 0)
        throw refuse('not-applicable', `${srv.hostname}:${dir} is not empty: green goes only into an empty directory; nothing was changed`);
      await execNotedOk(x.deps, srv, x, ['mkdir', '-p', '-m', '0700', '--', dir], 20_000);
      x.state.claimed = true;
    },
  };
}

/**
 * Should the upgrade stop before green is ready: green stopped, its directory removed, its slots and role on
 * blue dropped, the upgrade recorded as failed and green out of the inventory.
 */
export function unclaimStep(z: Green): ActionStep<GreenState> {
  const { build, srv, dir, dbs, blueEnd } = z;
  return {
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
  };
}

/** Green's cluster made by the target build's initdb, with blue's encoding and locale; psql found on its host. */
export function initdbStep(z: Green): ActionStep<GreenState> {
  const { build, srv, dir, version, locale, clientDirs, checksums } = z;
  return {
    name: `initdb (${version})`,
    does: { kind: 'upgrade.initdb', server: srv.id, binDir: build.binDir, dataDirectory: dir, locale: locale?.collate ?? null },
    says: `${build.binDir}/initdb -D ${dir} (encoding ${locale?.encoding ?? 'UTF8'}, locale ${locale?.collate ?? 'C.UTF-8'}${checksums ? ', data checksums' : ''}, as blue's)`,
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
          ...(checksums ? ['--data-checksums'] : []),
        ],
        280_000,
      );
    },
  };
}

/** Green's settings (its address, port, logical WAL, TLS) and blue's primary's pg_hba.conf, written into green's directory. */
export function settingsStep(z: Green): ActionStep<GreenState> {
  const { blue, srv, port, dir, name, blueEnd, sslCertFile, sslKeyFile } = z;
  return {
    name: "green's settings and blue's access rules",
    does: { kind: 'upgrade.settings', port, address: srv.address, ssl: [sslCertFile, sslKeyFile] },
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
        `ssl_cert_file = '${sslCertFile}'`,
        `ssl_key_file = '${sslKeyFile}'`,
        '',
      ].join('\n');
      await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat >> "$1/postgresql.conf"', 'pgherd-settings', dir], 20_000, { stdin: conf });
      await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat > "$1/pg_hba.conf"', 'pgherd-hba', dir], 20_000, { stdin: hba });
    },
  };
}

/** Green started with the target build's pg_ctl. */
export function startGreenStep(z: Green): ActionStep<GreenState> {
  const { build, srv, dir, version } = z;
  return {
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
  };
}

/** Blue's roles (with their SCRAM secrets) copied to green; on blue, in each database, the marker table and the publication. */
export function rolesAndPublicationsStep(z: Green): ActionStep<GreenState> {
  const { blue, srv, port, dir, dbs, blueEnd } = z;
  return {
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
  };
}

/** Green recorded in the inventory (its herd and primary) and the upgrade recorded, building. */
export function registerGreenStep(z: Green): ActionStep<GreenState> {
  const { h, build, srv, port, dir, name, dbs, green, version, gap } = z;
  return {
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
  };
}

/** Each database's schema copied to green, green's way-back publication, and its subscription to blue (initial copy). */
export function schemaAndSubscribeStep(z: Green): ActionStep<GreenState> {
  const { blue, srv, port, dir, dbs, green, blueEnd } = z;
  return {
    name: 'schema and subscriptions',
    does: { kind: 'upgrade.schema-and-subscribe', databases: dbs.map((d) => d.name), publication: PUBLICATION },
    says: `for each database: made on green with blue's encoding and locale, pg_dump --schema-only on ${blue.ssh.host}, applied on green (pg_dump's \\restrict guard kept); on green a subscription to ${PUBLICATION} (initial copy) as the upgrade's own role, TLS verified, and publication ${BACK_PUBLICATION} for the way back`,
    timeoutMs: 1_800_000,
    run: async (x) => {
      const upgradeId = x.state.upgradeId;
      if (upgradeId === null) throw new Error('the upgrade is not recorded');
      const login = await localLogin(blueEnd);
      const dump = await toolOn(x.deps, blue, x, 'pg_dump', [binDir(blue.pgVersion), blue.binDir].filter(Boolean));
      // One password for all of green's subscriptions: each new one replaces the one before.
      const upgradeLogin = await newLogin(blueEnd, upgradeId);
      for (const [k, d] of dbs.entries()) {
        // Each with blue's encoding and locale (green's initdb took the postgres database's; another may differ).
        if (d.name !== 'postgres')
          await psqlOn(
            x,
            srv,
            dir,
            port,
            'postgres',
            `CREATE DATABASE ${pg.escapeIdentifier(d.name)} TEMPLATE template0 ENCODING ${pg.escapeLiteral(d.encoding)} LC_COLLATE ${pg.escapeLiteral(d.collate)} LC_CTYPE ${pg.escapeLiteral(d.ctype)};`,
          );
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
  };
}

/** The initial copy and catch-up followed until green is current; then green is read-only, the upgrade ready and green kept. */
export function waitReadyStep(z: Green): ActionStep<GreenState> {
  const { h, name, dbs, green, blueEnd, version } = z;
  return {
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
  };
}
