// pgherd's floors, lowest first; an import may only point down (docs/architecture.md, "Floors"):
//   db          the schema and the connection: imports nothing of pgherd's but the settings module
//               (lib/adapters/settings: plain schemas, nothing of the database), for its pool's size
//   lib/agent   the agent that ships to database hosts: its own zone, it imports nothing of the server
//               but the plain text checks of lib/adapters/validation (the server reads its report format)
//   adapters    lib/adapters: ssh, dns, aws, pgbouncer, the Patroni REST client, ldap, validation, format,
//               log, metrics: plain values in and out, nothing of the database or the domain
//   fleet       lib/fleet: the inventory model (instance and herd snapshots, observe, refresh, Postgres
//               access, identity, the herd's topology, Patroni's view, the cloud catalogue and prices)
//   engine      lib/engine: define-action, pipeline, plan, submit, execute, lease, queue, waves, the
//               conductor, access and audit, maintenance windows
//   actions     lib/actions: each action, the step libraries they share, the registry of actions
//   features    lib/features: admin, rules, the API, auth, discovery, agents' reports, metrics, ...
//   entry       lib/entry (the web server, the CLI), jobs/ (the worker and its chores), app/ and
//               components/ (the console); components never import app (server actions come in as
//               props) nor the database
// Each import also keeps out of cycles (import-x/no-cycle): no file reaches itself through others.
// The lab and the test helpers (lib/lab, lib/testing, lib/bench) are never reachable from what runs
// in production: only tests, benchmarks and the demo/lab/bench commands import them.
export const FLOORS = ['adapters', 'fleet', 'engine', 'actions', 'features', 'entry'];
// Files that may use the lab: tests, benchmarks, the lab itself and the commands that start it.
export const TEST_SIDE = [
  '**/*.test.ts',
  'e2e/**',
  'lib/lab/**',
  'lib/testing/**',
  'lib/bench/**',
  'lib/entry/cli/demo.ts',
  'lib/entry/cli/lab.ts',
  'lib/entry/cli/bench.ts',
  'vitest.config.mts',
  'playwright.config.ts',
];

const CONSOLE = ['./app', './components', './jobs'];
const below = (i) => FLOORS.slice(0, i + 1).map((f) => `./${f}`);
const floorZones = FLOORS.flatMap((floor, i) => [
  {
    target: `./lib/${floor}`,
    from: './lib',
    except: [...below(i), './agent'],
    message: `lib/${floor} may import only the floors at or below it (${FLOORS.slice(0, i + 1).join(' < ')}).`,
  },
  ...(floor === 'adapters'
    ? [{ target: './lib/adapters', from: './db', message: 'an adapter takes plain values: it knows nothing of the database.' }]
    : []),
]);

const zones = [
  {
    target: './db',
    from: './lib',
    except: ['./adapters/settings'],
    message: 'db is the lowest floor: of lib/ it reads only the settings.',
  },
  ...CONSOLE.map((from) => ({ target: './db', from, message: 'db is the lowest floor.' })),
  ...['./db', ...CONSOLE].map((from) => ({
    target: './lib/agent',
    from,
    message: 'the agent ships to database hosts: it imports nothing of the server.',
  })),
  {
    target: './lib/agent',
    from: './lib',
    except: ['./agent', './adapters/validation'],
    message: 'the agent ships to database hosts: it imports nothing of the server.',
  },
  ...floorZones,
  ...CONSOLE.map((from) => ({ target: './lib', from, message: 'lib/ is below the console and the worker.' })),
  { target: './components', from: './app', message: 'components get server actions as props.' },
  { target: './components', from: './db', message: 'components never import the database: a page hands them their rows.' },
  { target: './components', from: './jobs', message: 'components are below the worker.' },
  { target: './jobs', from: './app', message: 'the worker is not the console.' },
  { target: './jobs', from: './components', message: 'the worker is not the console.' },
];
const testOnly = ['./lib/lab', './lib/testing', './lib/bench'].map((from) => ({
  target: './',
  from,
  message: 'the lab and the test helpers are never reachable from production entry points.',
}));

const rules = (zs) => ({
  'import-x/no-restricted-paths': ['error', { zones: zs, basePath: import.meta.dirname }],
  'import-x/no-cycle': ['error', { ignoreExternal: true }],
});

/** Flat-config blocks: production code keeps every floor, stays out of cycles and never reaches the
 *  lab; the lab's own code stays out of cycles; tests may import anything. */
export const layerConfigs = [
  { files: ['**/*.{ts,tsx,mts}'], ignores: TEST_SIDE, rules: rules([...zones, ...testOnly]) },
  { files: TEST_SIDE, ignores: ['**/*.test.ts', 'e2e/**'], rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] } },
];
