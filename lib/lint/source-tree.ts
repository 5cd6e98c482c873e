// The source tree as docs/architecture.md draws it ("The source tree"): one line of what each folder
// holds, declared here beside the folders' names and rendered between the page's `source-tree` markers.
// lib/lint/source-tree.test.ts fails when a folder is on disk (in git) and not here, when a folder here is
// gone, or when the page is not the rendering:
//   node --import tsx lib/lint/source-tree.ts --write   redraws it
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withSection } from '@/lib/adapters/format/generated-section';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DOC = path.join(ROOT, 'docs', 'architecture.md');

/** The folders whose every sub-folder the tree lists; elsewhere it stops at the folder. */
export const DETAILED = ['lib', 'lib/adapters', 'lib/fleet', 'lib/actions', 'lib/features', 'lib/entry'];

/** Each folder with what it holds, in the order the page reads them: the floors bottom up, then the rest. */
export const SOURCE_TREE: { folder: string; says: string }[] = [
  {
    folder: 'lib/settings',
    says: "every PGHERD_* setting declared once (kind, bounds, default, its line of the docs), read with setting('PGHERD_X') and checked at each process's start",
  },
  { folder: 'db', says: 'drizzle schema, migrations, client, the small types derived from the schema’s enums' },
  {
    folder: 'lib/agent',
    says: 'pgherd-agent, shipped to database hosts (discover, collect, send, the report format): its own zone, importing nothing of the server but lib/adapters/validation',
  },
  { folder: 'lib/adapters', says: 'plain values in and out, nothing of the database or the domain:' },
  { folder: 'lib/adapters/ssh', says: 'SSH (ssh2): quoted argument lists, pinned host keys, its errors in words' },
  { folder: 'lib/adapters/dns', says: 'RFC 2136 updates with TSIG, and Route 53' },
  { folder: 'lib/adapters/aws', says: 'the EC2 (launch, spot), RDS, Route 53 and Pricing clients, their waits and errors' },
  { folder: 'lib/adapters/pgbouncer', says: 'PgBouncer’s console and its ini' },
  { folder: 'lib/adapters/patroni', says: 'Patroni’s REST client' },
  { folder: 'lib/adapters/ldap', says: 'the LDAP client (ldapts)' },
  { folder: 'lib/adapters/validation', says: 'input checks shared by the server and the agent' },
  {
    folder: 'lib/adapters/format',
    says: 'bytes, durations, LSNs and money as people read them, visible text; generated sections of the docs',
  },
  { folder: 'lib/adapters/log', says: 'JSON log lines' },
  { folder: 'lib/adapters/metrics', says: 'the Prometheus registry' },
  { folder: 'lib/adapters/sql', says: 'SQL kept in .sql files, read once' },
  { folder: 'lib/adapters/libpq', says: 'libpq connection strings (the one builder; it carries passwords)' },
  { folder: 'lib/adapters/async', says: 'bounded concurrency (mapLimit)' },
  {
    folder: 'lib/fleet',
    says: 'the inventory model: instance and herd snapshots and their loaders (instance-ref, herd-ref), observe, the refresher and what it records, Postgres access, identity, candidates, drivers, DNS records, poolers, the dashboard and lag history',
  },
  { folder: 'lib/fleet/herds', says: 'a herd’s topology now, and its diagram' },
  { folder: 'lib/fleet/cloud', says: 'the cloud catalogue, identities, ranks and prices' },
  { folder: 'lib/fleet/backups', says: 'backup policies and pgBackRest’s configuration and reports' },
  { folder: 'lib/fleet/settings', says: 'parameter groups: what a member should run, what it runs (read and drift), its history' },
  { folder: 'lib/fleet/objects', says: 'fleet objects: roles, databases, extensions and pg_hba declared, read and compared' },
  {
    folder: 'lib/fleet/risks',
    says: 'what the refresh reads for the risks on its kept session, and a server certificate by a handshake of its own',
  },
  {
    folder: 'lib/engine',
    says: 'an operation’s life: define-action, plan, submit, queue, execute-target, pipeline, lease, waves, the conductor, hold (pause/resume), access and audit, maintenance windows, what a target owes',
  },
  { folder: 'lib/actions', says: 'the actions in family folders (one action a file, *.action.ts) and the registry listing them all:' },
  { folder: 'lib/actions/control', says: 'start, stop, restart, reload, check SSH, replace a host key' },
  { folder: 'lib/actions/topology', says: 'switchover, DR failover and drill, promote, rebuild, remaster, refresh DNS' },
  { folder: 'lib/actions/cloud', says: 'resize an instance or a herd, power off and on' },
  { folder: 'lib/actions/backups', says: 'configure backups, back up, restore, restore drills, tear down' },
  { folder: 'lib/actions/grow', says: 'add a replica, replace and evacuate a member, retire one' },
  { folder: 'lib/actions/maintenance', says: 'the risks’ fixes over SQL: vacuum freeze, drop a replication slot, end a session' },
  { folder: 'lib/actions/upgrade', says: 'minor upgrades, and a major’s blue/green: precheck, build, cut over, roll back, clean up' },
  { folder: 'lib/actions/parameters', says: 'apply settings: parameter groups onto members' },
  { folder: 'lib/actions/objects', says: 'apply fleet objects: declared roles, databases and pg_hba onto herds' },
  { folder: 'lib/actions/steps', says: 'the step libraries every family shares (control, drain, DNS, pooler, restore, seed, ...)' },
  {
    folder: 'lib/actions/drivers',
    says: 'one driver per control plane (pg-ctl/, patroni/, rds/), driverOf, and the contracts actions ask of them',
  },
  { folder: 'lib/features', says: 'what people and agents use:' },
  { folder: 'lib/features/admin', says: 'the model declarations and the pages they make (list, change, history)' },
  { folder: 'lib/features/agents', says: 'the agents’ HTTP API and ingest (and its batcher), fleet health, Patroni proposals' },
  { folder: 'lib/features/api', says: 'the HTTP API: its contract (zod, the OpenAPI document), bodies, lists, responses and errors' },
  { folder: 'lib/features/audit', says: 'the audit log’s hash chain and its export' },
  { folder: 'lib/features/auth', says: 'sign-in (local and LDAP), sessions, tokens, the server-action wrapper' },
  { folder: 'lib/features/backups', says: 'the recoverability scorecard, lapses, expiry' },
  { folder: 'lib/features/discovery', says: 'EC2 and RDS discovery into the inventory' },
  { folder: 'lib/features/dr', says: 'the DR scorecard' },
  { folder: 'lib/features/health', says: 'the readiness probe' },
  { folder: 'lib/features/metrics', says: 'the fleet’s gauges for Prometheus' },
  { folder: 'lib/features/operations', says: 'the confirmation page’s view; pause, resume, abort, retry' },
  { folder: 'lib/features/patroni', says: 'the leader follower' },
  { folder: 'lib/features/rules', says: 'rules, schedules, blackouts, windows, webhooks' },
  { folder: 'lib/features/settings', says: 'a herd’s settings page and accepting drift' },
  { folder: 'lib/features/objects', says: 'a herd’s fleet objects and accepting their drift' },
  { folder: 'lib/features/risks', says: 'the fleet’s risks: found, judged, kept, acknowledged, listed' },
  { folder: 'lib/features/spot', says: 'spot interruption notices' },
  { folder: 'lib/features/heal', says: 'auto-replace: members gone replaced by the system, where a policy says so' },
  { folder: 'lib/features/upgrades', says: 'pending maintenance and the upgrade campaign' },
  { folder: 'lib/entry', says: 'the processes’ entry points:' },
  { folder: 'lib/entry/web', says: 'the web server and its queue handles' },
  { folder: 'lib/entry/cli', says: 'demo, lab, bench, migrate, createsuperuser' },
  { folder: 'jobs', says: 'the worker process (start-worker.ts) and its chores' },
  { folder: 'app', says: 'pages, server actions, route handlers (thin)' },
  { folder: 'components', says: 'React components (never import app or the database)' },
  { folder: 'lib/lab', says: 'the lab: Postgres fleet, Redis, sshd, BIND 9, console start-up, the sandbox inventory' },
  { folder: 'lib/testing', says: 'test helpers (hand-made inventory, an impostor Postgres, a held worker)' },
  { folder: 'lib/bench', says: 'the benchmarks (npm run bench)' },
  { folder: 'lib/lint', says: 'the checks on the code itself: floors and rooms, the import picture, this tree, the docs’ links' },
  { folder: 'lib/setup', says: 'bootstrap.sh and test.sh: what npm run demo and npm test install and run' },
  { folder: 'e2e', says: 'browser tests (Playwright, Debian Chromium)' },
  { folder: 'docs', says: 'the manual' },
  { folder: 'deploy', says: 'systemd units, Prometheus and Grafana provisioning' },
  { folder: 'public', says: 'the favicon and robots.txt' },
  { folder: '.ci', says: 'the clean-clone CI command' },
];

/** The folders in git that the tree must list: every top-level one (lib/ is its floors), and the sub-folders of the detailed ones. */
export function foldersOnDisk(): string[] {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  const out = new Set<string>();
  for (const f of files) {
    const parts = f.split('/');
    if (parts.length > 1) out.add(parts[0] ?? '');
    for (const d of DETAILED) {
      const depth = d.split('/').length;
      if (f.startsWith(`${d}/`) && parts.length > depth + 1) out.add(parts.slice(0, depth + 1).join('/'));
    }
  }
  return [...out].filter((f) => f !== 'lib').sort();
}

const WIDTH = 112;

/** The code block between the markers. */
export function renderTree(tree = SOURCE_TREE): string {
  const name = (folder: string) => {
    const parent = tree.find((t) => folder.startsWith(`${t.folder}/`) && DETAILED.includes(t.folder));
    return parent ? `  ${folder.slice(parent.folder.length + 1)}/` : `${folder}/`;
  };
  const col = Math.max(...tree.map((t) => name(t.folder).length)) + 2;
  const lines: string[] = [];
  for (const t of tree) {
    let line = name(t.folder).padEnd(col);
    let words = 0;
    for (const word of t.says.split(' ')) {
      if (words > 0 && line.length + word.length + 1 > WIDTH) {
        lines.push(line);
        line = ' '.repeat(col);
        words = 0;
      }
      line += words > 0 ? ` ${word}` : word;
      words++;
    }
    lines.push(line);
  }
  return ['```', ...lines, '```'].join('\n');
}

export const withTree = (doc: string, text: string): string => withSection(doc, 'source-tree', text);

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const text = renderTree();
  if (process.argv.includes('--write')) writeFileSync(DOC, withTree(readFileSync(DOC, 'utf8'), text));
  else console.log(text);
}
