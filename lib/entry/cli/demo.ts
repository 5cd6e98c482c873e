// npm run demo [-- --small] [--no-console] [--ha] [--file FILE] [--subnet A.B.C]: the lab, pgherd's database with the sandbox
// fleet's environments, herds and servers, a worker, the console, and an agent for every lab server
// that discovers the instances and keeps reporting them. Everything it starts is in lab.json as it
// starts; Ctrl-C or SIGTERM (to the demo, or to its whole process group) stops all of it. `--ha`: pgherd itself
// on three sites (its database on Patroni behind each site's HAProxy, its queue under Sentinel), a console
// and a worker on sites a and b, HAProxy in front of the consoles; `npm run lab -- kill-site a` loses one.
import { randomBytes } from 'node:crypto';
import { mkdirSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { buildConsole, prepareDatabase, startConsole, startWorkerProcess, writeSiteEnv } from '@/lib/lab/console';
import { cancellable, labIdentity, run, StartCancelled, throwIfCancelled } from '@/lib/lab/proc';
import { makeLabVolume, volumesUnavailable } from '@/lib/lab/volumes';
import { freePort } from '@/lib/lab/ports';
import { startConsoleFront } from '@/lib/lab/control-plane';
import {
  DEFAULT_LAB_FILE,
  DEMO_PATRONI,
  DEMO_RDS,
  refreshPids,
  refuseIfOwned,
  startLab,
  stopLab,
  trackProcess,
  updateLab,
  type LabInfo,
  type LabOptions,
} from '@/lib/lab/lab';
import { reportAll, runLabAgents, writeLabAgents } from '@/lib/lab/agents';
import { addLabReadNames } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { showBackups } from '@/lib/lab/demo-backups';
import { showObjects } from '@/lib/lab/demo-objects';
import { DEFAULT_FLEET, type FleetSpec } from '@/lib/lab/fleet';
import { eq, ne } from 'drizzle-orm';
import { createDb, type Db } from '@/db/client';
import { approvalPolicies, environments, instances, users } from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { acceptPatroniProposal, patroniProposals } from '@/lib/features/agents/patroni-proposal';
import { checkSettings, setting } from '@/lib/settings/settings';

const log = (m: string) => console.log(`demo: ${m}`);
const USAGE = 'usage: npm run demo -- [--small] [--no-console] [--ha] [--file FILE] [--subnet A.B.C]';
/** Where `--ha` puts pgherd's own sites (a, b, c on .1-.3): beside the fleet's subnets, never one of them. */
const HA_SUBNET = '127.0.86';

export interface DemoOptions {
  /** Where lab.json goes (default .lab/lab.json). */
  file: string;
  /** One herd of two, a one-member Patroni herd: every kind of service the demo runs, on a small machine. */
  small: boolean;
  /** Build and start the console, and the agents that report to it (`--no-console`: neither). */
  console: boolean;
  /**
   * The fleet's addresses (A.B.C.x) and the Patroni herd's (the next /24): a demo beside another lab on
   * this machine (a test run's) does not race it for the same addresses and ports.
   */
  subnet?: string;
  /** pgherd's own control plane on three sites, two consoles and two workers (`--ha`). */
  ha: boolean;
}

const SMALL_FLEET: FleetSpec = {
  environments: ['production'],
  herds: ['billing'],
  replicas: 1,
  sites: ['dc-east', 'dc-west'],
  // A minor release behind, as the full demo's staging/orders: pending maintenance has a herd to list.
  builds: { 'production/billing': '15-older' },
};
const SMALL_PATRONI = DEMO_PATRONI.map((h) => ({ ...h, members: 1 }));

export function demoOptions(argv: string[]): DemoOptions {
  const opts: DemoOptions = { file: DEFAULT_LAB_FILE, small: false, console: true, ha: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--small') opts.small = true;
    else if (a === '--no-console') opts.console = false;
    else if (a === '--ha') opts.ha = true;
    else if (a === '--file' && argv[i + 1]) opts.file = path.resolve(argv[++i]!);
    else if (a === '--subnet' && argv[i + 1]) opts.subnet = loopbackSubnet(argv[++i]!);
    else throw new Error(`unknown argument ${JSON.stringify(a)}`);
  }
  return opts;
}

/** A.B.C of a loopback /24 whose next three /24s are loopback too (127.x.y, y < 253). */
function loopbackSubnet(v: string): string {
  const m = /^127\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (!m || Number(m[1]) > 255 || Number(m[2]) > 252) throw new Error(`--subnet wants 127.X.Y with Y below 253, not ${JSON.stringify(v)}`);
  return v;
}

/** The fleet, the Patroni herds and the RDS herd the options ask for. */
function labShape(opts: DemoOptions): Required<Pick<LabOptions, 'fleet' | 'patroni' | 'rds' | 'pgbouncer'>> {
  const fleet = { ...(opts.small ? SMALL_FLEET : DEFAULT_FLEET), ...(opts.subnet ? { subnet: opts.subnet } : {}) };
  const after = (k: number) => opts.subnet?.replace(/\d+$/, (c) => String(Number(c) + k));
  const next = after(1);
  const patroni = (opts.small ? SMALL_PATRONI : DEMO_PATRONI).map((h) => (next ? { ...h, subnet: next } : h));
  const rdsSubnet = after(2);
  const rds = DEMO_RDS.map((h) => (rdsSubnet ? { ...h, subnet: rdsSubnet } : h));
  // Production's pooler takes TLS and SCRAM on its admin console, as a real one would: Rotate pgherd's
  // credentials changes its admin password with the rest.
  return { fleet, patroni, rds, pgbouncer: [{ environment: 'production', herd: 'billing', scram: true }] };
}

async function main() {
  checkSettings('demo');
  let opts: DemoOptions;
  try {
    opts = demoOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`demo: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  // The terminal or pipe the demo writes to may go with the same Ctrl-C (`npm run demo | tee`): a write
  // that fails then must not end the demo in the middle of its stop. What it would have said is lost.
  for (const out of [process.stdout, process.stderr]) out.on('error', () => {});
  // A demo already running from this checkout keeps its lab: refuse before touching anything of it.
  try {
    refuseIfOwned(opts.file);
  } catch (err) {
    console.error(`demo: ${(err as Error).message}`);
    process.exit(1);
  }

  const cancel = new AbortController();
  let stopping = false;
  let agents: { stop: () => Promise<void> } | undefined;
  let refresh: NodeJS.Timeout | undefined;
  let started: Promise<void> = Promise.resolve();

  const stop = (code: number, why: string) => {
    if (stopping) {
      log(`${why}: already stopping everything, in order`);
      return;
    }
    stopping = true;
    log(`${why}: stopping`);
    clearInterval(refresh);
    cancel.abort();
    void (async () => {
      await started.catch(() => {}); // its failure has been told already; a cancelled start ends here
      await agents?.stop();
      await stopLab(opts.file, log);
      log('stopped; nothing left running');
      process.exit(code);
    })().catch((err: unknown) => {
      const again = opts.file === DEFAULT_LAB_FILE ? '' : ` --file ${opts.file}`;
      console.error(
        `demo: the stop failed: ${err instanceof Error ? err.message : String(err)}; \`npm run lab -- down${again}\` tries again`,
      );
      process.exit(1);
    });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => stop(0, sig));
  // Whatever else throws, the lab is stopped rather than left running without its owner.
  process.on('uncaughtException', (err) => {
    console.error(`demo: ${err.stack ?? err.message}`);
    stop(1, 'an unexpected error');
  });
  process.on('unhandledRejection', (err) => {
    console.error(`demo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    stop(1, 'an unexpected error');
  });

  // The start runs in a cancellable scope: a stop cancels it, and it ends at its next step with what it
  // has started already in lab.json (the lab's start stops its own part when it is cut short).
  started = cancellable(cancel.signal, () =>
    up(opts, {
      // The console exits 0 when it is asked to stop: by the same group signal as the demo, or by hand.
      consoleExited: (code) => {
        if (!stopping) stop(code === 0 ? 0 : 1, `the console exited (${code ?? 'by a signal'})`);
      },
      agents: (a) => (agents = a),
      labUp: () => {
        if (stopping) return;
        // Postgres restarted by pgherd's actions, by Patroni or by the lab's EC2 front has a new PID:
        // lab.json keeps naming the one that runs.
        refresh = setInterval(() => {
          try {
            refreshPids(opts.file);
          } catch (err) {
            log(`lab.json not refreshed: ${(err as Error).message}`);
          }
        }, 2_000);
      },
    }),
  );
  started.catch((err: unknown) => {
    if (err instanceof StartCancelled && stopping) return;
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    stop(1, 'the start failed');
  });
}

interface Hooks {
  consoleExited: (code: number | null) => void;
  agents: (a: { stop: () => Promise<void> }) => void;
  labUp: () => void;
}

/** Brings the demo up and says how to reach it; every process it starts goes into lab.json as it starts. */
async function up(opts: DemoOptions, hooks: Hooks): Promise<void> {
  const t0 = Date.now();
  const file = opts.file;
  // With --subnet, pgherd's own sites take the /24 after the RDS herd's (its fleet's, Patroni's and RDS's are the three before).
  const haSubnet = opts.subnet?.replace(/\d+$/, (c) => String(Number(c) + 3)) ?? HA_SUBNET;
  const lab = await startLab({ file, log, ...labShape(opts), ...(opts.ha ? { controlPlane: { subnet: haSubnet } } : {}) });
  hooks.labUp();
  const admin = {
    username: setting('PGHERD_ADMIN_USERNAME') ?? 'admin',
    password: setting('PGHERD_ADMIN_PASSWORD') ?? randomBytes(9).toString('base64url'),
  };
  log("migrating and seeding pgherd's database");
  // Without the console there are no agents to discover the instances: they are seeded.
  const { apiToken, agentTokens } = await prepareDatabase(lab, admin, { discover: opts.console });
  throwIfCancelled();
  if (opts.console && !setting('PGHERD_SKIP_BUILD')) await buildConsole(log);
  // --ha: each site's console and worker run as pgherd-web.service and pgherd-worker.service do, from
  // that site's environment file (deploy/systemd/; lib/lab/units.ts).
  const ha = opts.ha ? await haSites(lab) : null;
  const sites = opts.ha ? ['a', 'b'] : [undefined];
  log(opts.ha ? 'starting a worker on sites a and b (pgherd-worker.service)' : 'starting a worker');
  const workers: Awaited<ReturnType<typeof startWorkerProcess>>[] = [];
  for (const site of sites)
    workers.push(
      await startWorkerProcess(lab, {
        quiet: true,
        labFile: file,
        ...(site ? { site, name: `worker-${site}`, unitEnvFile: ha?.envFiles[site] } : {}),
      }),
    );
  const worker = workers[0]!;
  const relative = path.relative(process.cwd(), file);
  const shown = relative && !relative.startsWith('..') ? relative : file;
  if (!opts.console) {
    updateLab(file, (now) => {
      now.metrics = now.metrics && { ...now.metrics, workers: [worker.metricsUrl] };
    });
    console.log('');
    console.log(`pgherd's lab is ready, with its database and a worker (no console: --no-console)`);
    console.log(`  the worker's metrics: ${worker.metricsUrl}; everything the lab started is described in ${shown}`);
    sayHa(lab, null);
    console.log(`  (up in ${((Date.now() - t0) / 1000).toFixed(0)} s; Ctrl-C stops everything)`);
    return;
  }
  const port = process.env.PORT ? Number(process.env.PORT) : undefined;
  const web = ha ? await haConsoles(lab, file, ha, hooks) : await startConsole(lab, { port, log, labFile: file });
  if (!opts.ha) web.child.once('exit', (code) => hooks.consoleExited(code));
  updateLab(file, (now: LabInfo) => {
    now.console = { url: web.url, admin, apiToken };
    now.metrics = now.metrics && { ...now.metrics, web: `${web.url}/metrics`, workers: workers.map((w) => w.metricsUrl) };
    now.instances = now.instances.map((i) => ({ ...i, agentToken: agentTokens.get(i.server) }));
  });
  // The agents discover the fleet: two rounds, so that a replica reported before its upstream gets it.
  log(`discovering the fleet: an agent for each of the ${agentTokens.size} lab servers`);
  const labAgents = writeLabAgents(lab, web.url, agentTokens);
  for (let round = 0; round < 2; round++) {
    throwIfCancelled();
    for (const f of await reportAll(labAgents)) log(`agent ${f.server}: ${f.error}`);
  }
  throwIfCancelled();
  hooks.agents(runLabAgents(labAgents, log));
  // Each replica's read name becomes a record matched to it, now that the agents have reported it: a resize drains it.
  const { db, pool } = createDb(lab.database.url, 2);
  try {
    log(`read names: ${await addLabReadNames(db, lab)} replicas' names follow them (a resize drains them)`);
    log(`Patroni: ${await acceptPatroniProposals(db, admin.username)} members' REST addresses accepted, as ${admin.username}`);
    log(`approvals: ${await demoApprovalPolicy(db)}`);
    log(`risks: ${await leaveARisk(lab)}`);
    log(
      `risks: ${await leaveAFullDisk(lab).catch((err: unknown) => `no disk risk shown (${err instanceof Error ? err.message : String(err)})`)}`,
    );
  } finally {
    await pool.end();
  }
  console.log('');
  console.log(`pgherd is ready at ${web.url}`);
  console.log(`  sign in as ${admin.username} / ${admin.password}`);
  console.log(
    `  metrics: curl -H "Authorization: Bearer $(jq -r .metrics.token ${shown})" ${web.url}/metrics (the worker's: ${worker.metricsUrl})`,
  );
  console.log(`  API: curl -H "Authorization: Bearer $(jq -r .console.apiToken ${shown})" ${web.url}/api/v1/instances`);
  console.log(
    `  sandbox fleet: ${lab.instances.length} PostgreSQL instances, discovered by their agents (every ${labAgents[0]?.config.intervalSeconds ?? 30} s; configurations in ${lab.dir}/agents); everything the lab started is described in ${shown}`,
  );
  sayHa(lab, web.url);
  console.log(`  (up in ${((Date.now() - t0) / 1000).toFixed(0)} s; Ctrl-C stops everything)`);
  // Staging's objects applied, then its backups configured, backed up and drilled, in the background: the
  // herd pages and Recoverability show them working (one after the other: each holds the herds it runs on).
  const said = (what: string) => (err: unknown) => log(`${what}: not shown (${err instanceof Error ? err.message : String(err)})`);
  void (async () => {
    log(
      "fleet objects: staging declares a role, a database and an access rule (Settings > Object sets); applying them (an operation by 'demo')",
    );
    await showObjects(lab, log).catch(said('fleet objects'));
    if (lab.backup?.scratch.some((s) => s.environment === 'staging')) {
      log("backups: configuring staging's, a full backup each, then a restore drill (operations by 'demo', in the background)");
      await showBackups(lab, log).catch(said('backups'));
    }
  })();
}

/**
 * A risk a newcomer can see and fix: a physical slot on staging's first primary that nothing streams from,
 * keeping WAL from removal (the Risks page, the herd's risks facet; the fix drops it).
 */
async function leaveARisk(lab: LabInfo): Promise<string> {
  const p = lab.instances.find((i) => i.environment === 'staging' && i.role === 'primary');
  if (!p) return 'no staging primary to leave one on';
  await query(
    p.dsn,
    "SELECT pg_create_physical_replication_slot('forgotten_standby', true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'forgotten_standby')",
  );
  return `an inactive slot, forgotten_standby, left on staging/${p.herd}'s primary (${p.address}:${String(p.port)}): Risks shows it`;
}

/**
 * A disk a newcomer can see filling and grow: a staging replica's data directory moved onto a 20 GiB lab
 * volume (an XFS filesystem on a loop device, an EBS volume in moto), filled to 91%: its agent reports it,
 * Risks says it, and Grow data volume grows it (EBS, then xfs_growfs over SSH). Only as root with loop
 * devices (lib/lab/volumes.ts says why not otherwise).
 */
async function leaveAFullDisk(lab: LabInfo): Promise<string> {
  const why = volumesUnavailable();
  if (why) return `no disk risk shown: ${why}`;
  const r = lab.instances.find(
    (i) => i.environment === 'staging' && i.role === 'replica' && !i.patroniUrl && lab.aws?.instances.some((x) => x.server === i.server),
  );
  if (!r) return 'no staging replica on EC2 to fill a disk on';
  // 20 GiB (a sparse file: what is allocated costs no space), so the replica's WAL (wal_keep_size and a
  // checkpoint's worth) still fits in the 9% left.
  const v = await makeLabVolume(lab, r, 20);
  const s = statfsSync(v.mountPoint);
  const leave = Math.floor(s.blocks * s.bsize * 0.09);
  await run(labIdentity(), ['fallocate', '--length', String(s.bavail * s.bsize - leave), path.join(v.mountPoint, 'ballast')]);
  return `${r.server}'s data directory is on a 20 GiB volume (${v.volumeId}, ${v.device}) filled to 91%: Risks shows it, and Grow data volume grows it`;
}

/**
 * Production's approval policy, as a regulated team would set it (docs/approvals.md): every action whose
 * confirmation asks for something typed waits for one approval from a production operator or admin
 * other than its requester. alice asks; frank (production operator) approves.
 */
async function demoApprovalPolicy(db: Db): Promise<string> {
  const [production] = await db.select({ id: environments.id }).from(environments).where(eq(environments.name, 'production'));
  if (!production) return 'no production environment: no policy';
  const [had] = await db
    .select({ id: approvalPolicies.id })
    .from(approvalPolicies)
    .where(eq(approvalPolicies.environmentId, production.id));
  if (!had) await db.insert(approvalPolicies).values({ environmentId: production.id, typedConfirmation: true, approvalsRequired: 1 });
  return "production's typed confirmations wait for a second person (try as alice, approve as frank)";
}

/**
 * What the agents reported of Patroni, accepted as the seed's admin would on each herd's page (audited as
 * theirs): the Patroni herd is run through Patroni from the start, as a newcomer trying a switchover expects.
 * A proposal with a problem (an address not on the member's server) is left for a person to look at.
 */
async function acceptPatroniProposals(db: Db, username: string): Promise<number> {
  const [admin] = await db.select({ id: users.id }).from(users).where(eq(users.username, username));
  if (!admin) return 0;
  const actor = { id: admin.id, username, access: await loadAccess(db, admin.id) };
  const proposing = await db.selectDistinct({ herdId: instances.herdId }).from(instances).where(ne(instances.patroniProposedUrl, ''));
  let accepted = 0;
  for (const { herdId } of proposing)
    for (const p of await patroniProposals(db, herdId))
      if (!p.problem) {
        await acceptPatroniProposal(db, actor, p.instanceId, p.url);
        accepted++;
      }
  return accepted;
}

/** With --ha: what runs on which site, and how to lose one (`front`: the consoles' balancer, when there are consoles). */
function sayHa(lab: LabInfo, front: string | null) {
  if (!lab.controlPlane) return;
  const [a, b, c] = lab.controlPlane.sites;
  const what = front ? 'a console, a worker' : 'a worker';
  console.log(
    `  pgherd across sites: a (${a!.address}: its database's primary, Redis's master, ${what}), b (${b!.address}: replicas, ${what}), c (${c!.address}: the tie-breaker)${front ? `; ${front} is HAProxy in front of both consoles` : ''}`,
  );
  console.log(
    `  lose site a the way a machine goes: npm run lab -- kill-site a${front ? '   (the console answers from site b within about 30 s)' : ''}`,
  );
}

interface HaSites {
  front: number;
  publicUrl: string;
  secret: string;
  /** Each site's /etc/pgherd/pgherd.env, in the lab's directory (site-a/pgherd.env...). */
  envFiles: Record<string, string>;
}

/**
 * `--ha`: the front's port (PORT, else a free one), the consoles' public URL and shared secret (a session
 * signed by either console is good on both), and each site's environment file, written as an install
 * writes /etc/pgherd/pgherd.env on that machine.
 */
async function haSites(lab: LabInfo): Promise<HaSites> {
  const front = process.env.PORT ? Number(process.env.PORT) : await freePort();
  const publicUrl = `http://127.0.0.1:${String(front)}`;
  const secret = randomBytes(32).toString('base64url');
  const envFiles: Record<string, string> = {};
  for (const site of ['a', 'b']) {
    const dir = path.join(lab.dir, `site-${site}`);
    mkdirSync(dir, { recursive: true });
    envFiles[site] = path.join(dir, 'pgherd.env');
    writeSiteEnv(lab, site, envFiles[site], { secret, publicUrl, consolePort: await freePort(), metricsPort: await freePort() });
  }
  return { front, publicUrl, secret, envFiles };
}

/**
 * `--ha`: a console on sites a and b, each started as pgherd-web.service starts it from its site's
 * environment file (through its site's HAProxy to pgherd's database), and HAProxy in front of both on
 * the demo's port. The demo stops when both have exited.
 */
async function haConsoles(lab: LabInfo, file: string, ha: HaSites, hooks: Hooks) {
  const consoles = [];
  for (const site of ['a', 'b']) {
    log(`starting the console on site ${site} (pgherd-web.service)`);
    consoles.push({ site, ...(await startConsole(lab, { log, labFile: file, site, quiet: true, unitEnvFile: ha.envFiles[site] })) });
  }
  // A console lost with its site is what --ha is for: the demo goes on while one console is left.
  let left = consoles.length;
  for (const c of consoles)
    c.child.once('exit', (code, signal) => {
      left -= 1;
      if (left === 0) hooks.consoleExited(code);
      else log(`the console on site ${c.site} exited (${signal ?? String(code)}): the other one serves`);
    });
  const pid = await startConsoleFront(
    labIdentity(),
    path.join(lab.dir, 'control-plane'),
    ha.front,
    consoles.map((c) => ({ name: `console-${c.site}`, port: Number(new URL(c.url).port) })),
  );
  trackProcess(file, { name: 'haproxy-consoles', pid, program: 'haproxy', signal: 'SIGTERM' });
  return { url: ha.publicUrl, child: consoles[0]!.child };
}

void main();
