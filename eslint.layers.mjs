import { readdirSync } from 'node:fs';
import path from 'node:path';

// pgherd's floors, lowest first; an import may only point down (docs/architecture.md, "Floors"):
//   settings    lib/settings: every PGHERD_* setting declared once, read and checked there; imports
//               nothing of pgherd's, so every floor (the database's client too) reads settings one way
//   db          the schema and the connection: imports nothing of pgherd's but the settings
//   adapters    lib/adapters: ssh, dns, aws, pgbouncer, the Patroni REST client, ldap, validation, format,
//               log, metrics: plain values in and out, nothing of the database or the domain
//   lib/agent   the agent that ships to database hosts: its own zone, it imports nothing of the server
//               but the plain text checks of lib/adapters/validation (the server reads its report format)
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
//
// Inside lib/actions (docs/architecture.md, "Actions"), three kinds of folder:
//   steps/      the step libraries the actions share: import nothing else of lib/actions
//   drivers/    one driver per control plane, and the contracts of what actions ask of them: import
//               steps/ and nothing else of lib/actions
//   a family    control/, topology/, cloud/, backups/, grow/, upgrade/, parameters/: its actions, which
//               import steps/ and drivers/, never another family (composition goes through the engine)
// and registry.ts at the top, which imports every action and is imported by none of them.
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

/** lib/actions' family folders: every folder of it with a module in it, but steps/ and drivers/. */
const ACTIONS_DIR = path.join(import.meta.dirname, 'lib', 'actions');
export const ACTION_FAMILIES = readdirSync(ACTIONS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !['steps', 'drivers'].includes(d.name))
  .filter((d) => readdirSync(path.join(ACTIONS_DIR, d.name)).some((f) => /\.tsx?$/.test(f)))
  .map((d) => d.name)
  .sort();
const actionZones = [
  {
    target: './lib/actions/steps',
    from: './lib/actions',
    except: ['./steps'],
    message: 'steps/ is what every action shares: it imports nothing else of lib/actions (no driver, no family).',
  },
  {
    target: './lib/actions/drivers',
    from: './lib/actions',
    except: ['./drivers', './steps'],
    message: 'a driver imports steps/ and the other drivers, never an action family (an action asks the driver, not the other way).',
  },
  ...ACTION_FAMILIES.map((family) => ({
    target: `./lib/actions/${family}`,
    from: './lib/actions',
    except: [`./${family}`, './steps', './drivers'],
    message: `lib/actions/${family} imports steps/ and drivers/, never another family nor the registry: composition goes through the engine.`,
  })),
];
const below = (i) => FLOORS.slice(0, i + 1).map((f) => `./${f}`);
const floorZones = FLOORS.flatMap((floor, i) => [
  {
    target: `./lib/${floor}`,
    from: './lib',
    except: ['./settings', ...below(i), './agent'],
    message: `lib/${floor} may import only the floors at or below it (${FLOORS.slice(0, i + 1).join(' < ')}).`,
  },
  ...(floor === 'adapters'
    ? [{ target: './lib/adapters', from: './db', message: 'an adapter takes plain values: it knows nothing of the database.' }]
    : []),
]);

const zones = [
  ...['./db', ...CONSOLE].map((from) => ({ target: './lib/settings', from, message: 'the settings are the lowest floor.' })),
  {
    target: './lib/settings',
    from: './lib',
    except: ['./settings'],
    message: 'the settings are the lowest floor: they import nothing of pgherd’s.',
  },
  { target: './db', from: './lib', except: ['./settings'], message: 'db is below lib/: of it, it reads only the settings.' },
  ...CONSOLE.map((from) => ({ target: './db', from, message: 'db is below lib/.' })),
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
  ...actionZones,
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

const restricted = (zs) => ({ 'import-x/no-restricted-paths': ['error', { zones: zs, basePath: import.meta.dirname }] });
const noCycle = { 'import-x/no-cycle': ['error', { ignoreExternal: true }] };

/** The floors alone: production code keeps every floor and never reaches the lab; tests may import anything. */
export const floorConfigs = [{ files: ['**/*.{ts,tsx,mts}'], ignores: TEST_SIDE, rules: restricted([...zones, ...testOnly]) }];
/** No cycles, in production code and in the lab's own. */
export const cycleConfigs = [{ files: ['**/*.{ts,tsx,mts}'], ignores: ['**/*.test.ts', 'e2e/**'], rules: noCycle }];
export const layerConfigs = [...floorConfigs, ...cycleConfigs];

/**
 * An action's plan reads as its pipeline (docs/extending.md, "Adding an action"): its checks, then steps from
 * named factories, each short enough to read whole. No function of lib/actions passes 80 lines.
 */
export const shortPlans = {
  files: ['lib/actions/**/*.ts'],
  ignores: TEST_SIDE,
  rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: false, skipComments: false }] },
};
